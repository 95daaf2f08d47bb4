"""API tokens: random, shown once at creation, stored only as their SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, HSA_ID_RULE, is_device_id, is_hsa_id

from ..storage.registry_tables import ApiToken
from .roles import Principal, Role

ADMIN_TOKEN_NAME = "VARDKOLL_ADMIN_TOKEN"


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
    session: Session, name: str, role: Role, region: str | None = None, unit: str | None = None,
    device: str | None = None, now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token and return it with its secret, which exists nowhere else afterwards."""
    check_scope(role, region, unit, device)
    secret = new_secret()
    row = ApiToken(
        token_sha256=digest(secret), name=name, role=role.value, region=region, unit=unit, device=device,
        created_at=now or datetime.now(timezone.utc),
    )
    session.add(row)
    session.flush()
    return row, secret


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


def principal_for(session: Session, secret: str, admin_secret: str | None) -> Principal | None:
    """The principal a presented token speaks for, or None when it is unknown or revoked."""
    if admin_secret and hmac.compare_digest(secret.encode(), admin_secret.encode()):
        return Principal(Role.admin, ADMIN_TOKEN_NAME)
    row = session.scalars(select(ApiToken).where(ApiToken.token_sha256 == digest(secret), ApiToken.revoked_at.is_(None))).first()
    if row is None:
        return None
    return Principal(Role(row.role), row.name, row.id, row.region, row.unit, row.device)
