"""Every relative link and image in README.md and docs/*.md points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_relative_links_and_images_resolve(document):
    text = document.read_text(encoding="utf-8")
    targets = [m["target"] for m in LINK.finditer(text) if not re.match(r"[a-z]+:", m["target"])]
    missing = [t for t in targets if not (document.parent / t).exists()]
    assert not missing, f"{document.name} links to files that do not exist: {missing}"
