"""Changes to the unit registry and targets, shared by the API and `vardkoll admin`: the callers own the transaction."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vardkoll.protocol.local_time import opening_hours_text

from ..storage.registry_tables import TargetRow, UnitRow
from .schemas import TargetCreate, UnitCreate, UnitUpdate


class RegistryConflict(ValueError):
    """The change collides with what is registered; the message says what to do instead."""


class UnknownUnit(LookupError):
    def __init__(self, unit: str) -> None:
        super().__init__(f"unit {unit} is not registered")


def registered_units(session: Session, region: str | None = None) -> list[UnitRow]:
    query = select(UnitRow).order_by(UnitRow.unit)
    if region is not None:
        query = query.where(UnitRow.region == region)
    return list(session.scalars(query))


def registered_unit(session: Session, unit: str) -> UnitRow:
    row = session.get(UnitRow, unit)
    if row is None:
        raise UnknownUnit(unit)
    return row


def add_unit(session: Session, spec: UnitCreate) -> UnitRow:
    if session.get(UnitRow, spec.unit) is not None:
        raise RegistryConflict(f"unit {spec.unit} is already registered; change it with PUT /api/v1/units/{spec.unit}")
    row = UnitRow(**spec.model_dump(exclude={"opening_hours"}), opening_hours=opening_hours_text(spec.opening_hours))
    session.add(row)
    session.flush()
    return row


def update_unit(session: Session, unit: str, changes: UnitUpdate) -> UnitRow:
    row = registered_unit(session, unit)
    for name, value in changes.model_dump(exclude_unset=True).items():
        setattr(row, name, opening_hours_text(value) if name == "opening_hours" else value)
    session.flush()
    return row


def remove_unit(session: Session, unit: str) -> int:
    """Unregister a unit and its targets (its events and figures stay); how many targets went with it."""
    registered_unit(session, unit)
    targets = session.execute(delete(TargetRow).where(TargetRow.unit == unit)).rowcount
    session.execute(delete(UnitRow).where(UnitRow.unit == unit))
    return targets


def unit_targets(session: Session, unit: str) -> list[TargetRow]:
    return list(session.scalars(select(TargetRow).where(TargetRow.unit == unit).order_by(TargetRow.metric, TargetRow.valid_from)))


def set_target(session: Session, unit: str, spec: TargetCreate, replace: bool = False) -> tuple[TargetRow, bool]:
    """Add a target; with `replace`, one with the same metric and start is overwritten. (row, whether it replaced one)."""
    registered_unit(session, unit)
    row = session.scalars(select(TargetRow).where(TargetRow.unit == unit, TargetRow.metric == spec.metric, TargetRow.valid_from == spec.valid_from)).first()
    if row is not None and not replace:
        raise RegistryConflict(f"unit {unit} already has a {spec.metric} target from {spec.valid_from} (id {row.id}); delete it first or pick another start")
    replaced = row is not None
    if row is None:
        row = TargetRow(unit=unit, **spec.model_dump())
        session.add(row)
    else:
        row.target, row.valid_to = spec.target, spec.valid_to
    session.flush()
    return row, replaced


class UnknownTarget(LookupError):
    def __init__(self, unit: str, target_id: int) -> None:
        super().__init__(f"unit {unit} has no target with id {target_id}")


def remove_target(session: Session, unit: str, target_id: int) -> TargetRow:
    row = session.get(TargetRow, target_id)
    if row is None or row.unit != unit:
        raise UnknownTarget(unit, target_id)
    session.delete(row)
    return row
