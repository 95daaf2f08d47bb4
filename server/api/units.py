"""The unit registry: HSA-id, name, region, time zone, opening hours, policy, and targets per metric.

Admins change it; region analysts and installers read their region's units, clinic managers their own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..auth import visible_units
from ..services import Services
from .deps import Admin, RegistryReader, RowId, ServicesDep, SessionDep, UnitInPath, confine_to_region, confine_to_unit
from ..registry import (
    RegistryConflict,
    TargetCreate,
    TargetPublic,
    UnitCreate,
    UnitPublic,
    UnitUpdate,
    UnknownTarget,
    UnknownUnit,
    add_unit,
    registered_units,
    remove_target,
    remove_unit,
    set_target,
    unit_targets,
    update_unit,
)

router = APIRouter(prefix="/units", tags=["units"])


def _not_found(exc: LookupError) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc.args[0]))


def _commit(session: Session, services: Services) -> None:
    """Commit a registry change and make this process's unit directory see it at once."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "someone registered the same entry at the same moment; read it and try again") from None
    services.units.invalidate()


@router.get("")
def list_units(
    principal: RegistryReader,
    session: SessionDep,
    region: Annotated[str | None, Query(description="only this region's units")] = None,
) -> list[UnitPublic]:
    if region is not None:
        confine_to_region(session, principal, region)
    rows = registered_units(session, region)
    visible = set(visible_units(principal, [(row.unit, row.region) for row in rows]))
    return [UnitPublic.of(row) for row in rows if row.unit in visible]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_unit(_: Admin, spec: UnitCreate, session: SessionDep, services: ServicesDep) -> UnitPublic:
    try:
        row = add_unit(session, spec)
    except RegistryConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    _commit(session, services)
    return UnitPublic.of(row)


@router.get("/{unit}")
def read_unit(principal: RegistryReader, unit: UnitInPath, session: SessionDep) -> UnitPublic:
    row = confine_to_unit(session, principal, unit)
    if row is None:
        raise _not_found(UnknownUnit(unit))
    return UnitPublic.of(row)


@router.put("/{unit}")
def change_unit(_: Admin, unit: UnitInPath, changes: UnitUpdate, session: SessionDep, services: ServicesDep) -> UnitPublic:
    """Change the fields sent; the others stay as they are."""
    try:
        row = update_unit(session, unit, changes)
    except UnknownUnit as exc:
        raise _not_found(exc) from None
    _commit(session, services)
    return UnitPublic.of(row)


@router.delete("/{unit}", status_code=status.HTTP_204_NO_CONTENT)
def delete_unit(_: Admin, unit: UnitInPath, session: SessionDep, services: ServicesDep) -> Response:
    """Unregister a unit and its targets. Its events and figures stay in the archive."""
    try:
        remove_unit(session, unit)
    except UnknownUnit as exc:
        raise _not_found(exc) from None
    _commit(session, services)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{unit}/targets")
def list_targets(principal: RegistryReader, unit: UnitInPath, session: SessionDep) -> list[TargetPublic]:
    """The unit's targets per metric with their validity dates; a figure uses the one valid on its period's last day."""
    if confine_to_unit(session, principal, unit) is None:
        raise _not_found(UnknownUnit(unit))
    return [TargetPublic.of(row) for row in unit_targets(session, unit)]


@router.post("/{unit}/targets", status_code=status.HTTP_201_CREATED)
def create_target(_: Admin, unit: UnitInPath, spec: TargetCreate, session: SessionDep, services: ServicesDep) -> TargetPublic:
    """Set a target from `valid_from`; where validity periods overlap, the one that starts later applies."""
    try:
        row, _replaced = set_target(session, unit, spec)
    except UnknownUnit as exc:
        raise _not_found(exc) from None
    except RegistryConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    _commit(session, services)
    return TargetPublic.of(row)


@router.delete("/{unit}/targets/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_target(_: Admin, unit: UnitInPath, target_id: RowId, session: SessionDep, services: ServicesDep) -> Response:
    try:
        remove_target(session, unit, target_id)
    except UnknownTarget as exc:
        raise _not_found(exc) from None
    _commit(session, services)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
