"""FastAPI dependencies: who sent this request (401 when nobody we know), and may that role be here (403)."""

from __future__ import annotations

from typing import Annotated, Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .roles import Principal, Role
from .scope import OutOfScope, require_role
from .tokens import principal_for

bearer = HTTPBearer(auto_error=False, description="An API token, sent as `Authorization: Bearer <token>`.")


def _unauthorized(message: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": challenge})


def current_principal(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("an API token is required: send the header 'Authorization: Bearer <token>'")
    services = request.app.state.services
    admin_token = services.settings.admin_token
    with services.sessions() as session:
        principal = principal_for(session, credentials.credentials, admin_token.get_secret_value() if admin_token else None)
    if principal is None:
        raise _unauthorized("the API token is not valid: unknown or revoked", "invalid_token")
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
