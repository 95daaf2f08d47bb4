"""The dashboard's login: an API token pasted once, then kept in an HttpOnly, SameSite=Strict cookie.

The cookie holds the token itself: a pasted API token, or the token of kind `sign_in` that signing in at
the region's identity provider made (sign_in_routes.py), so revoking the token ends every session that uses it. The API accepts the cookie on reading requests only
(server/auth/dependencies.py), which is what the live stream's EventSource needs.
"""

from __future__ import annotations

from fastapi import Request, Response

from ..auth import Principal
from ..auth.dependencies import SESSION_COOKIE, principal_for_token

SESSION_MAX_AGE_S = 12 * 3600  # a working day on a wall screen; then log in again


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE) or None


def signed_in(request: Request) -> Principal | None:
    token = token_of(request)
    return principal_for_token(request, token) if token else None


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def start_session(request: Request, response: Response, token: str, max_age_s: int = SESSION_MAX_AGE_S) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
