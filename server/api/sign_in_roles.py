"""Sign-in roles (admin only): which claim value in the region's ID token (a group, a role) gives which role
and scope when someone signs in to the pages (server/sign_in/). Every change goes into the access log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ..access_log import record_access
from ..access_log.log import client_of
from ..auth import Principal, Role
from ..sign_in import MappingRefused, add_mapping, describe, list_mappings, remove_mapping
from .deps import Admin, RowId, SessionDep, invalid

router = APIRouter(prefix="/sign-in/roles", tags=["sign-in"])


class SignInRoleCreate(BaseModel):
    """clinic_manager: unit; region_analyst: region; installer: region or none (all); admin: no scope."""

    model_config = ConfigDict(extra="forbid")

    claim: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:/-]+$", description="the ID token's claim, e.g. groups")]
    value: Annotated[str, Field(min_length=1, max_length=200, description="a string claim equal to it, or a list claim holding it")]
    role: Role
    region: Annotated[str | None, Field(max_length=100)] = None
    unit: str | None = None


class SignInRolePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    claim: str
    value: str
    role: Role
    region: str | None
    unit: str | None
    created_at: datetime
    created_by: str


def _record(request: Request, session: SessionDep, principal: Principal, what: str, unit: str | None, region: str | None) -> None:
    record_access(
        session,
        principal.name,
        principal.role.value,
        "change:sign_in_role",
        token_id=principal.token_id,
        unit=unit,
        region=region,
        detail=what,
        client=client_of(request),
    )
    request.state.change_recorded = True  # no second, plainer record from the access-log middleware


@router.get("")
def read_sign_in_roles(_: Admin, session: SessionDep) -> list[SignInRolePublic]:
    return [SignInRolePublic.model_validate(row) for row in list_mappings(session)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_sign_in_role(principal: Admin, spec: SignInRoleCreate, request: Request, session: SessionDep) -> SignInRolePublic:
    try:
        row = add_mapping(session, spec.claim, spec.value, spec.role, spec.region, spec.unit, principal.name)
    except MappingRefused as exc:
        raise invalid("body", "role", str(exc)) from None
    _record(request, session, principal, f"added {describe(row)}", row.unit, row.region)
    session.commit()
    return SignInRolePublic.model_validate(row)


@router.delete("/{mapping_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sign_in_role(principal: Admin, mapping_id: RowId, request: Request, session: SessionDep) -> Response:
    """Signed-in sessions keep their role until they end (at most VARDKOLL_OIDC_SESSION_HOURS); revoke them on
    the tokens page to end them at once."""
    row = remove_mapping(session, mapping_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no sign-in role with id {mapping_id}")
    _record(request, session, principal, f"removed {describe(row)}", row.unit, row.region)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
