"""API tokens: random, shown once at creation, stored only as their SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, HSA_ID_RULE, is_device_id, is_hsa_id

from ..storage.registry_tables import ApiToken
from .roles import Principal, Role

ADMIN_TOKEN_NAME = "VARDKOLL_ADMIN_TOKEN"
USE_RECORDED_EVERY = timedelta(minutes=5)  # last_used_at is written at most this often per token
MAX_ROTATION_OVERLAP = timedelta(days=30)
SIGN_IN_KIND = "sign_in"  # ApiToken.kind of a browser's session from the identity provider (server/sign_in/)


class TokenScopeError(ValueError):
    """The scope given for a new token does not fit its role; the message says what to change."""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scope(role: Role, region: str | None, unit: str | None, device: str | None) -> None:
    """Each role takes exactly the scope it is confined to."""
    takes = {
        Role.admin: set(),
        Role.region_analyst: {"region"},
        Role.clinic_manager: {"unit"},
        Role.installer: {"region"},
        Role.device: {"unit", "device"},
    }[role]
    given = {name for name, value in (("region", region), ("unit", unit), ("device", device)) if value is not None}
    extra = sorted(given - takes)
    if extra:
        takes_text = f" (it takes: {', '.join(sorted(takes))})" if takes else ""
        raise TokenScopeError(f"a {role.value} token takes no {' or '.join(extra)}{takes_text}")
    required = takes - ({"region"} if role is Role.installer else set())  # an installer without region works everywhere
    missing = sorted(required - given)
    if missing:
        raise TokenScopeError(f"a {role.value} token needs a {' and a '.join(missing)}")
    if unit is not None and not is_hsa_id(unit):
        raise TokenScopeError(f"unit {HSA_ID_RULE}")
    if device is not None and not is_device_id(device):
        raise TokenScopeError(f"device {DEVICE_ID_RULE}")
    if region is not None and not region.strip():
        raise TokenScopeError("region must not be empty")


def issue_token(
    session: Session,
    name: str,
    role: Role,
    region: str | None = None,
    unit: str | None = None,
    device: str | None = None,
    now: datetime | None = None,
    valid_for: timedelta = timedelta(days=365),
    rotated_from: int | None = None,
    kind: str = "token",
) -> tuple[ApiToken, str]:
    """Store a new token valid for `valid_for` and return it with its secret, which exists nowhere else afterwards."""
    check_scope(role, region, unit, device)
    now = now or datetime.now(timezone.utc)
    secret = new_secret()
    row = ApiToken(
        token_sha256=digest(secret),
        name=name,
        role=role.value,
        region=region,
        unit=unit,
        device=device,
        created_at=now,
        expires_at=now + valid_for,
        rotated_from=rotated_from,
        kind=kind,
    )
    session.add(row)
    session.flush()
    return row, secret


class UnknownToken(LookupError):
    def __init__(self, token_id: int) -> None:
        super().__init__(f"there is no token with id {token_id}")


class RetiredToken(ValueError):
    """A revoked or expired token cannot be rotated: issue a new one."""


def rotate_token(session: Session, token_id: int, overlap: timedelta, valid_for: timedelta, now: datetime | None = None) -> tuple[ApiToken, str, ApiToken]:
    """A new token with the same name, role and scope; the old one keeps working for `overlap` (at most
    30 days, never longer than it had left), so its holder can switch without a gap. (new, secret, old)."""
    now = now or datetime.now(timezone.utc)
    old = session.get(ApiToken, token_id)
    if old is None:
        raise UnknownToken(token_id)
    if old.kind == SIGN_IN_KIND:
        raise RetiredToken(f"token {token_id} is a browser's sign-in session: revoke it to end the session")
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise RetiredToken(f"token {token_id} is {'revoked' if old.revoked_at else 'expired'}; issue a new one instead")
    overlap = min(max(overlap, timedelta(0)), MAX_ROTATION_OVERLAP)
    old.expires_at = min(old.expires_at or now + overlap, now + overlap)
    new, secret = issue_token(session, old.name, Role(old.role), old.region, old.unit, old.device, now, valid_for, rotated_from=old.id)
    return new, secret, old


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int, now: datetime | None = None) -> tuple[ApiToken, bool] | None:
    """Revoke a token (kept for the record): (the token, whether it was revoked just now), None when there is no
    such token. Revoking twice keeps the first time."""
    row = session.get(ApiToken, token_id)
    if row is None:
        return None
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = now or datetime.now(timezone.utc)
    return row, True


def principal_for(session: Session, secret: str, admin_secret: str | None, now: datetime | None = None) -> Principal | None:
    """The principal a presented token speaks for, or None when it is unknown, revoked or expired. Notes the
    use (at most every USE_RECORDED_EVERY); the caller commits."""
    if admin_secret and hmac.compare_digest(secret.encode(), admin_secret.encode()):
        return Principal(Role.admin, ADMIN_TOKEN_NAME)
    now = now or datetime.now(timezone.utc)
    row = session.scalars(select(ApiToken).where(ApiToken.token_sha256 == digest(secret), ApiToken.revoked_at.is_(None))).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= USE_RECORDED_EVERY:
        row.last_used_at = now
    return Principal(Role(row.role), row.name, row.id, row.region, row.unit, row.device, signed_in=row.kind == SIGN_IN_KIND)
