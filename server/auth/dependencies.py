"""FastAPI dependencies: who sent this request (401 when nobody we know), and may that role be here (403)."""

from __future__ import annotations

from typing import Annotated, Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .roles import Principal, Role
from .scope import OutOfScope, require_role
from .tokens import principal_for

bearer = HTTPBearer(auto_error=False, description="An API token, sent as `Authorization: Bearer <token>`.")

# The dashboard's login keeps the API token in this HttpOnly, SameSite=Strict cookie (server/web/session.py).
# Browsers' EventSource cannot send headers, so reading requests (GET, HEAD) accept the cookie as well;
# requests that change something still need the header, so a cookie alone can never change state.
SESSION_COOKIE = "vardkoll_session"
COOKIE_METHODS = frozenset({"GET", "HEAD"})


def principal_for_token(request: Request, token: str) -> Principal | None:
    """The principal of an API token, None when the token is unknown, revoked or expired. Kept on the
    request for the access log (`server/access_log`)."""
    services = request.app.state.services
    admin_token = services.settings.admin_token
    with services.reads() as session:  # no transaction on PostgreSQL: the last use is one UPDATE
        principal = principal_for(session, token, admin_token.get_secret_value() if admin_token else None)
        if session.dirty:
            session.commit()  # the token's last use
    request.state.principal = principal
    return principal


def session_token(request: Request) -> str | None:
    """The API token held by the dashboard's session cookie, on reading requests only."""
    if request.method not in COOKIE_METHODS:
        return None
    return request.cookies.get(SESSION_COOKIE) or None


def _unauthorized(message: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": challenge})


def current_principal(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    bearer_token = credentials.credentials if credentials is not None and credentials.credentials else None
    token = bearer_token or session_token(request)
    if not token:
        raise _unauthorized("an API token is required: send the header 'Authorization: Bearer <token>'")
    principal = principal_for_token(request, token)
    if principal is None:
        raise _unauthorized("the API token is not valid: unknown, revoked or expired", "invalid_token")
    if bearer_token and principal.signed_in:
        # A sign-in session lives in the browser's cookie; sent as a header it would let the cookie's value
        # make API writes, which a cookie never may.
        request.state.principal = None
        raise _unauthorized("a browser's sign-in session is not an API token: ask an admin for an API token", "invalid_token")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def forbidden(exc: OutOfScope) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))


def role_gate(roles: frozenset[Role]) -> Callable[[Principal], Principal]:
    """A dependency that lets only principals of `roles` through."""

    def gate(principal: CurrentPrincipal) -> Principal:
        try:
            require_role(principal, roles)
        except OutOfScope as exc:
            raise forbidden(exc) from None
        return principal

    return gate
