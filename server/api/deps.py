"""What every router shares: the process's services, a database session, the role gates and unit scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from sqlalchemy.orm import Session

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, HSA_ID_RULE, is_device_id, is_hsa_id

from ..auth import (
    ADMINS,
    DEAD_LETTER_READERS,
    DEVICE_MANAGERS,
    EVENT_SENDERS,
    FIGURE_READERS,
    REGISTRY_READERS,
    CurrentPrincipal,
    OutOfScope,
    Principal,
    forbidden,
    require_region,
    require_unit,
    role_gate,
)
from ..services import Services
from ..storage.registry_tables import UnitRow


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
# Ids of rows in a path: PostgreSQL's integer, so a larger number is a 422, not a 500 from the database.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a row's id")]

Admin = Annotated[Principal, Depends(role_gate(ADMINS))]
FigureReader = Annotated[Principal, Depends(role_gate(FIGURE_READERS))]
RegistryReader = Annotated[Principal, Depends(role_gate(REGISTRY_READERS))]
DeadLetterReader = Annotated[Principal, Depends(role_gate(DEAD_LETTER_READERS))]
EventSender = Annotated[Principal, Depends(role_gate(EVENT_SENDERS))]
DeviceManager = Annotated[Principal, Depends(role_gate(DEVICE_MANAGERS))]


def invalid(where: str, name: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, with a message a person can act on."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": [where, name], "msg": message, "type": "value_error"}])


def check_hsa_id(value: str, where: str, name: str) -> str:
    if not is_hsa_id(value):
        raise invalid(where, name, f"{name} {HSA_ID_RULE}")
    return value


def checked_device_id(device: str, where: str = "path") -> str:
    if not is_device_id(device):
        raise invalid(where, "device", f"device {DEVICE_ID_RULE}")
    return device


def unit_in_path(unit: Annotated[str, Path(description="The unit's HSA-id")]) -> str:
    return check_hsa_id(unit, "path", "unit")


UnitInPath = Annotated[str, Depends(unit_in_path)]


def confine_to_unit(session: Session, principal: Principal, unit: str) -> UnitRow | None:
    """403 unless the principal may see `unit`; the unit's registry row (None when unregistered)."""
    row = session.get(UnitRow, unit)
    try:
        require_unit(principal, unit, row.region if row else None)
    except OutOfScope as exc:
        raise forbidden(exc) from None
    return row


def confine_to_region(session: Session, principal: Principal, region: str) -> None:
    """403 unless the principal may ask about `region` (a unit-bound one: only its own unit's region)."""
    own = session.get(UnitRow, principal.unit) if principal.unit else None
    try:
        require_region(principal, region, own.region if own else None)
    except OutOfScope as exc:
        raise forbidden(exc) from None


__all__ = [
    "Admin",
    "CurrentPrincipal",
    "DeadLetterReader",
    "DeviceManager",
    "EventSender",
    "FigureReader",
    "RegistryReader",
    "ServicesDep",
    "SessionDep",
    "UnitInPath",
    "check_hsa_id",
    "checked_device_id",
    "confine_to_region",
    "confine_to_unit",
    "invalid",
]
