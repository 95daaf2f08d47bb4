"""Collector devices of a unit: which may publish (production refuses unregistered ones) and how they are.

Registering (PUT) makes no broker account: a device gets one by enrolling. Retiring (DELETE) revokes the
device's API tokens and, with broker accounts, deletes its broker account; when the broker fails, nothing
changes and the answer is 503."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from ..provisioning import BrokerAccountError, retire_device
from ..registry import UnknownDevice, UnknownUnit, register_device as register, unit_devices
from ..storage.registry_tables import DeviceRow
from .deps import DeviceManager, RegistryReader, ServicesDep, SessionDep, UnitInPath, checked_device_id, confine_to_unit

router = APIRouter(tags=["devices"])
log = logging.getLogger("vardkoll.provisioning")


class DevicePublic(BaseModel):
    unit: str
    device: str
    registered_at: datetime
    retired_at: datetime | None
    status: str | None
    last_seen_at: datetime | None
    heartbeat: dict[str, Any] | None = Field(
        default=None, description="the device's last status message as it sent it: version, outbox, clock, publisher, config (docs/collector.md)"
    )


def _public(row: DeviceRow) -> DevicePublic:
    return DevicePublic(
        unit=row.unit,
        device=row.device,
        registered_at=row.registered_at,
        retired_at=row.retired_at,
        status=row.status,
        last_seen_at=row.last_seen_at,
        heartbeat=_heartbeat(row.last_status),
    )


def _heartbeat(text: str | None) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@router.get("/units/{unit}/devices", response_model=list[DevicePublic])
def list_devices(principal: RegistryReader, unit: UnitInPath, session: SessionDep) -> list[DevicePublic]:
    """The unit's devices, retired ones included, with their last known status."""
    confine_to_unit(session, principal, unit)
    return [_public(row) for row in unit_devices(session, unit)]


@router.put("/units/{unit}/devices/{device}", response_model=DevicePublic)
def register_device(principal: DeviceManager, unit: UnitInPath, device: Annotated[str, Path()], session: SessionDep) -> DevicePublic:
    """Register a device so that it may publish for the unit (again, if it was retired)."""
    confine_to_unit(session, principal, unit)
    try:
        row, _ = register(session, unit, checked_device_id(device), datetime.now(timezone.utc))
    except UnknownUnit:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unit {unit} is not registered; add it first") from None
    session.commit()
    return _public(row)


@router.delete("/units/{unit}/devices/{device}", response_model=DevicePublic)
def retire(principal: DeviceManager, unit: UnitInPath, device: Annotated[str, Path()], services: ServicesDep, session: SessionDep) -> DevicePublic:
    """Retire a device: it may no longer publish (its API tokens and broker account go); its history stays."""
    confine_to_unit(session, principal, unit)
    try:
        row = retire_device(session, unit, checked_device_id(device), services.broker_accounts)
    except UnknownDevice as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except BrokerAccountError as exc:
        session.rollback()
        log.error("retirement of device %s of %s refused by the broker: %s", device, unit, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"device {device} was not retired (nothing changed): {exc}") from None
    session.commit()
    return _public(row)
