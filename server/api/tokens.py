"""API tokens (admin only): create one (its secret is shown this once), list them, rotate one with an overlap,
revoke one. Every token expires: people's after `VARDKOLL_TOKEN_LIFETIME_DAYS` (365), devices' after
`VARDKOLL_DEVICE_TOKEN_LIFETIME_DAYS` (730), unless `valid_days` says otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..storage.registry_tables import ApiToken

from ..auth import RetiredToken, Role, TokenScopeError, UnknownToken, check_scope, issue_token, list_tokens, revoke_token, rotate_token
from ..settings import ServerSettings
from .deps import Admin, RowId, ServicesDep, SessionDep

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    """admin: no scope; region_analyst: region; clinic_manager: unit; installer: region or none (all); device: unit and device."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200, description="who or what holds it, e.g. 'Region Uppsala uppföljning'")]
    role: Role
    region: Annotated[str | None, Field(max_length=100)] = None
    unit: str | None = None
    device: str | None = None
    valid_days: Annotated[int | None, Field(ge=1, le=3650, description="default: 365 for people, 730 for devices (server settings)")] = None

    @model_validator(mode="after")
    def _scope_fits_role(self) -> "TokenCreate":
        try:
            check_scope(self.role, self.region, self.unit, self.device)
        except TokenScopeError as exc:
            raise ValueError(str(exc)) from None
        return self


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    region: str | None
    unit: str | None
    device: str | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="to within five minutes")
    rotated_from: int | None
    kind: str = Field(default="token", description="token: issued by an admin; sign_in: a browser's session after signing in at the region")


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret: shown only now, stored only as its SHA-256")


def lifetime(settings: ServerSettings, role: Role, valid_days: int | None = None) -> timedelta:
    if valid_days is not None:
        return timedelta(days=valid_days)
    return timedelta(days=settings.device_token_lifetime_days if role is Role.device else settings.token_lifetime_days)


class TokenRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: Annotated[int, Field(ge=0, le=720, description="how long the old token keeps working (at most 30 days)")] = 24
    valid_days: Annotated[int | None, Field(ge=1, le=3650, description="the new token's lifetime (default: the role's)")] = None


# Ids are PostgreSQL `integer`s: a larger one was a 500 (out of range) instead of a 422 (found by schemathesis).
TokenId = RowId


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(_: Admin, spec: TokenCreate, session: SessionDep, services: ServicesDep) -> TokenCreated:
    row, secret = issue_token(
        session, spec.name, spec.role, spec.region, spec.unit, spec.device, valid_for=lifetime(services.settings, spec.role, spec.valid_days)
    )
    session.commit()
    return TokenCreated(**TokenPublic.model_validate(row).model_dump(), token=secret)


@router.post("/{token_id}/rotate", status_code=status.HTTP_201_CREATED)
def rotate(_: Admin, token_id: TokenId, spec: TokenRotation, session: SessionDep, services: ServicesDep) -> TokenCreated:
    """A new token with the same name, role and scope; the old one works for `overlap_hours` more."""
    row = session.get(ApiToken, token_id)
    try:
        new, secret, _old = rotate_token(
            session, token_id, timedelta(hours=spec.overlap_hours), lifetime(services.settings, Role(row.role) if row else Role.admin, spec.valid_days)
        )
    except UnknownToken as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except RetiredToken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    session.commit()
    return TokenCreated(**TokenPublic.model_validate(new).model_dump(), token=secret)


@router.get("")
def read_tokens(_: Admin, session: SessionDep) -> list[TokenPublic]:
    """Every token ever issued, revoked ones included; never a secret."""
    return [TokenPublic.model_validate(row) for row in list_tokens(session)]


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(_: Admin, token_id: TokenId, session: SessionDep) -> Response:
    """Revoke a token at once; it stays listed with its revocation time."""
    if revoke_token(session, token_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no token with id {token_id}")
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
