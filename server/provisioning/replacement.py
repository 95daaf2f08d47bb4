"""Replace a device: retire the old one, stop its credentials, and issue a code for its successor.

The old device's registration row stays (retired, with its date), and so do its events: history is
kept under the device id that sent it. Its `device` API tokens are revoked at once, and with broker
accounts (dynsec) its broker account is deleted, which also disconnects it; by hand otherwise
(docs/server.md, "Broker accounts"). The broker comes last: when it fails, `BrokerAccountError`
propagates and the caller rolls back, so the device is not shown as retired while it can still publish. The successor
enrolls with the one-time code under the same unit, with a new device id or the same one (redeeming
reactivates a retired id and revokes its earlier tokens again).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..auth import Role
from ..registry import UnknownDevice
from ..storage.registry_tables import ApiToken, DeviceRow
from .broker_accounts import BrokerAccounts
from .enrollment import DEFAULT_VALIDITY, IssuedCode, issue_code


def retire_device(session: Session, unit: str, device: str, accounts: BrokerAccounts | None = None, now: datetime | None = None) -> DeviceRow:
    """Retire `device` (if it is not already), revoke its API tokens and delete its broker account (again,
    if it was retired before: that is harmless and heals an account left behind). The caller commits."""
    now = now or datetime.now(timezone.utc)
    row = session.get(DeviceRow, (unit, device))
    if row is None:
        raise UnknownDevice(unit, device)
    row.retired_at = row.retired_at or now
    session.execute(
        update(ApiToken)
        .where(ApiToken.role == Role.device.value, ApiToken.unit == unit, ApiToken.device == device, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.flush()
    if accounts is not None:
        accounts.remove(unit, device)
    return row


def replace_device(
    session: Session,
    unit: str,
    device: str,
    created_by: str,
    successor: str | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    now: datetime | None = None,
    accounts: BrokerAccounts | None = None,
) -> IssuedCode:
    """Retire `device` (see `retire_device`) and issue a one-time code for the successor (only `successor`
    may redeem it when given). The caller commits."""
    now = now or datetime.now(timezone.utc)
    issued = issue_code(session, unit, created_by, successor, valid_for, now)
    retire_device(session, unit, device, accounts, now)
    return issued
