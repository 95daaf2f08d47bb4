"""Forms on the dashboard's pages that change something (enrollment codes, replacing a device).

The API never lets the session cookie authorise a write (server/auth/dependencies.py). These few page
forms do, because an installer at a clinic has only the browser, so each is guarded twice:

- a CSRF token in a hidden field: HMAC-SHA256 keyed with the session's own API token over a fixed
  label. Another site cannot read the HttpOnly cookie, so it cannot make the token; nothing is stored
  server-side, so it works across server processes and ends with the session;
- the `Origin` header, when the browser sends one, must be this site (SameSite=Strict already keeps
  the cookie off cross-site requests; this also refuses a same-site sibling host).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

from .session import token_of

_LABEL = b"vardkoll web form v1"
FIELD = "csrf"


def csrf_token(request: Request) -> str:
    """The token a page puts into its forms; empty without a session."""
    token = token_of(request)
    return hmac.new(token.encode(), _LABEL, hashlib.sha256).hexdigest() if token else ""


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent (older browsers, some same-origin cases): the token alone decides
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


async def read_form(request: Request) -> dict[str, str] | None:
    """The posted form (first value per name) when the CSRF token and origin check out; None otherwise."""
    form = {name: values[0] for name, values in parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True).items()}
    expected = csrf_token(request)
    if not expected or not same_origin(request) or not hmac.compare_digest(form.get(FIELD, ""), expected):
        return None
    return form
