"""The enrollment code as a QR code, drawn on the server as inline SVG (segno; no image requests, no JS).

The QR code holds the code alone (`HKXRT-MWQAP`): a phone camera shows it as text to copy, and the
printed sheet carries nothing a code on paper would not. The server address is printed beside it.
A full QR code (never a Micro QR, which phones do not read) with medium error correction.
"""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, title: str) -> Markup:
    """Inline `<svg>` of `text` with a white quiet zone, scaled by CSS through its viewBox."""
    code = segno.make_qr(text, error="m")
    svg = code.svg_inline(scale=8, dark="#000", light="#fff", border=4, title=title, svgclass="qr", omitsize=True)
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))
