"""Issue enrollment codes and redeem them once for a device registration and a `device` API token.

Rules:
- a code belongs to one unit (and optionally one device id), is valid for `valid_for` (at most 24 h) and
  is redeemed at most once (a conditional UPDATE, so two racing redemptions cannot both win);
- redeeming registers the device (or reactivates a retired one) and issues a `device` token; the device's
  earlier tokens are revoked, so a replacement device takes over and the old one stops;
- with broker accounts (dynsec), redeeming also creates or resets the device's broker account, last: when
  the broker fails, `BrokerAccountError` propagates and the caller rolls back, so the code stays unused;
- every failed redemption is recorded by client; `FAILURE_LIMIT` failures within `FAILURE_WINDOW` make the
  client wait (TooManyFailures) whatever it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..auth import Role, issue_token
from ..storage.enrollment_tables import EnrollmentCode, EnrollmentFailure
from ..storage.registry_tables import ApiToken, DeviceRow, UnitRow
from .broker_accounts import BrokerAccounts, DeviceCredentials
from .codes import code_digest, new_code

DEFAULT_VALIDITY = timedelta(hours=24)
FAILURE_LIMIT = 10
FAILURE_WINDOW = timedelta(minutes=15)


class CodeRefused(ValueError):
    """The code cannot be redeemed; the message says why and what to do (it never echoes the code)."""


class TooManyFailures(RuntimeError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed enrollment attempts from this address; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class IssuedCode:
    code: str  # shown this once
    unit: str
    device: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Enrolled:
    unit: str
    device: str
    token: str  # shown this once
    broker: DeviceCredentials | None = None  # None when broker accounts are made by hand


def issue_code(
    session: Session, unit: str, created_by: str, device: str | None = None, valid_for: timedelta = DEFAULT_VALIDITY, now: datetime | None = None
) -> IssuedCode:
    now = now or datetime.now(timezone.utc)
    code = new_code()
    row = EnrollmentCode(code_sha256=code_digest(code), unit=unit, device=device, created_by=created_by[:200], created_at=now, expires_at=now + valid_for)
    session.add(row)
    session.flush()
    return IssuedCode(code, unit, device, row.expires_at)


def _check_rate(session: Session, client: str, now: datetime) -> None:
    since = now - FAILURE_WINDOW
    session.execute(delete(EnrollmentFailure).where(EnrollmentFailure.at < since))
    failures = session.scalars(
        select(EnrollmentFailure.at).where(EnrollmentFailure.client == client, EnrollmentFailure.at >= since).order_by(EnrollmentFailure.at)
    ).all()
    if len(failures) >= FAILURE_LIMIT:
        oldest = failures[len(failures) - FAILURE_LIMIT]
        raise TooManyFailures(max(1, int((oldest + FAILURE_WINDOW - now).total_seconds()) + 1))


def record_failure(session: Session, client: str, now: datetime | None = None) -> None:
    session.add(EnrollmentFailure(client=client[:64], at=now or datetime.now(timezone.utc)))


def redeem_code(session: Session, code: str, device: str, client: str, now: datetime | None = None, accounts: BrokerAccounts | None = None) -> Enrolled:
    """Redeem `code` for `device`. Raises TooManyFailures (before looking at the code) or CodeRefused; the
    caller commits in both the success and the refusal case (a refusal is recorded as a failure). Raises
    BrokerAccountError when `accounts` cannot make the device's broker account: the caller rolls back."""
    now = now or datetime.now(timezone.utc)
    _check_rate(session, client, now)
    row = session.scalars(select(EnrollmentCode).where(EnrollmentCode.code_sha256 == code_digest(code))).first()
    problem = None
    if row is None:
        problem = "this is not a valid enrollment code; check it, or ask for a new one"
    elif row.redeemed_at is not None:
        problem = "this enrollment code has been used already; ask for a new one"
    elif row.expires_at <= now:
        problem = "this enrollment code has expired; ask for a new one"
    elif row.device is not None and row.device != device:
        problem = f"this enrollment code is for device {row.device}; enroll with that device id"
    elif session.get(UnitRow, row.unit) is None:
        problem = "the unit of this enrollment code is no longer registered"
    if problem is not None:
        record_failure(session, client, now)
        raise CodeRefused(problem)
    assert row is not None
    claimed = session.execute(
        update(EnrollmentCode).where(EnrollmentCode.id == row.id, EnrollmentCode.redeemed_at.is_(None)).values(redeemed_at=now, redeemed_device=device)
    )
    if claimed.rowcount != 1:
        record_failure(session, client, now)
        raise CodeRefused("this enrollment code has been used already; ask for a new one")
    registered = session.get(DeviceRow, (row.unit, device))
    if registered is None:
        session.add(DeviceRow(unit=row.unit, device=device, registered_at=now))
    else:
        registered.retired_at = None
    session.execute(
        update(ApiToken)
        .where(ApiToken.role == Role.device.value, ApiToken.unit == row.unit, ApiToken.device == device, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    _, secret = issue_token(session, f"device {device} (enrolled)", Role.device, unit=row.unit, device=device, now=now)
    session.flush()  # database refusals surface here, before the broker account exists
    broker = accounts.provision(row.unit, device) if accounts is not None else None
    return Enrolled(row.unit, device, secret, broker)


def failures_of(session: Session, client: str) -> int:
    return session.scalar(select(func.count()).select_from(EnrollmentFailure).where(EnrollmentFailure.client == client)) or 0
