"""Replace a device: retire the old one, stop its credentials, and issue a code for its successor.

The old device's registration row stays (retired, with its date), and so do its events: history is
kept under the device id that sent it. Its `device` API tokens are revoked at once; its MQTT
credentials belong to the broker's setup and are removed there (docs/collector.md). The successor
enrolls with the one-time code under the same unit, with a new device id or the same one (redeeming
reactivates a retired id and revokes its earlier tokens again).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..auth import Role
from ..storage.registry_tables import ApiToken, DeviceRow
from .enrollment import DEFAULT_VALIDITY, IssuedCode, issue_code


class UnknownDevice(LookupError):
    """The device to replace is not registered for the unit."""


def replace_device(session: Session, unit: str, device: str, created_by: str, successor: str | None = None,
                   valid_for: timedelta = DEFAULT_VALIDITY, now: datetime | None = None) -> IssuedCode:
    """Retire `device` (if it is not already), revoke its API tokens and issue a one-time code for the
    successor (only `successor` may redeem it when given). The caller commits."""
    now = now or datetime.now(timezone.utc)
    row = session.get(DeviceRow, (unit, device))
    if row is None:
        raise UnknownDevice(f"device {device} is not registered for unit {unit}")
    row.retired_at = row.retired_at or now
    session.execute(
        update(ApiToken)
        .where(ApiToken.role == Role.device.value, ApiToken.unit == unit, ApiToken.device == device, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return issue_code(session, unit, created_by, successor, valid_for, now)
