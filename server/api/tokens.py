"""API tokens (admin only): create one (its secret is shown this once), list them, revoke one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..auth import Role, TokenScopeError, check_scope, issue_token, list_tokens, revoke_token
from .deps import Admin, SessionDep

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    """admin: no scope; region_analyst: region; clinic_manager: unit; installer: region or none (all); device: unit and device."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200, description="who or what holds it, e.g. 'Region Uppsala uppföljning'")]
    role: Role
    region: Annotated[str | None, Field(max_length=100)] = None
    unit: str | None = None
    device: str | None = None

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


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret: shown only now, stored only as its SHA-256")


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(_: Admin, spec: TokenCreate, session: SessionDep) -> TokenCreated:
    row, secret = issue_token(session, spec.name, spec.role, spec.region, spec.unit, spec.device)
    session.commit()
    return TokenCreated(**TokenPublic.model_validate(row).model_dump(), token=secret)


@router.get("")
def read_tokens(_: Admin, session: SessionDep) -> list[TokenPublic]:
    """Every token ever issued, revoked ones included; never a secret."""
    return [TokenPublic.model_validate(row) for row in list_tokens(session)]


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(_: Admin, token_id: int, session: SessionDep) -> Response:
    """Revoke a token at once; it stays listed with its revocation time."""
    if revoke_token(session, token_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no token with id {token_id}")
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
