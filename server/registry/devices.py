"""Collector devices of a unit: registered ones may publish for it (outside dev mode only those).

Registering makes no broker account (a device gets one by enrolling); retiring lives with provisioning,
since it also revokes credentials (`provisioning.replacement.retire_device`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, is_device_id

from ..storage.registry_tables import DeviceRow, UnitRow
from .units import UnknownUnit

Registration = Literal["registered", "registered again", "unchanged"]


class UnknownDevice(LookupError):
    """The device is not registered for the unit."""

    def __init__(self, unit: str, device: str) -> None:
        super().__init__(f"device {device} is not registered for unit {unit}")


class BadDeviceId(ValueError):
    def __init__(self) -> None:
        super().__init__(f"the device id {DEVICE_ID_RULE}")


def register_device(session: Session, unit: str, device: str, now: datetime) -> tuple[DeviceRow, Registration]:
    """Let `device` publish for `unit` (again, if it was retired). The caller commits."""
    if not is_device_id(device):
        raise BadDeviceId()
    if session.get(UnitRow, unit) is None:
        raise UnknownUnit(unit)
    row = session.get(DeviceRow, (unit, device))
    if row is None:
        row = DeviceRow(unit=unit, device=device, registered_at=now)
        session.add(row)
        session.flush()
        return row, "registered"
    if row.retired_at is not None:
        row.retired_at = None
        session.flush()
        return row, "registered again"
    return row, "unchanged"


def registered_device(session: Session, unit: str, device: str) -> DeviceRow:
    row = session.get(DeviceRow, (unit, device))
    if row is None:
        raise UnknownDevice(unit, device)
    return row


def unit_devices(session: Session, unit: str) -> list[DeviceRow]:
    """The unit's devices, retired ones included, by id."""
    return list(session.scalars(select(DeviceRow).where(DeviceRow.unit == unit).order_by(DeviceRow.device)))
