"""Which role and scope a signed-in person gets: claim values an admin maps to roles (`/api/v1/sign-in/roles`),
matched against the claims of the checked ID token. No mapping, no role: the provider saying who someone is
does not say what they may see in vardkoll."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth import Role, check_scope
from ..storage.sign_in_tables import SignInRole


@dataclass(frozen=True)
class Grant:
    role: Role
    region: str | None
    unit: str | None


class NoRole(Exception):
    """The claims match no mapping, or mappings that disagree; the message names claims, never their holder."""


class MappingRefused(ValueError):
    """A mapping that cannot be stored; the message says what to change."""


def claim_values(claims: dict[str, Any], claim: str) -> set[str]:
    """A string claim as one value, a list claim as its strings; anything else holds none."""
    value = claims.get(claim)
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def grant_for(claims: dict[str, Any], mappings: Iterable[SignInRole]) -> Grant:
    matched = [m for m in mappings if m.value in claim_values(claims, m.claim)]
    grants = {Grant(Role(m.role), m.region, m.unit) for m in matched}
    if not grants:
        names = ", ".join(sorted(name for name in claims if name not in _STANDARD_CLAIMS)) or "none"
        raise NoRole(f"no sign-in role matches (claims besides the standard ones: {names})")
    if len(grants) > 1:
        raise NoRole(f"sign-in roles {', '.join(str(m.id) for m in matched)} all match and disagree; an admin must remove all but one")
    return grants.pop()


_STANDARD_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "sid", "jti"})


def add_mapping(session: Session, claim: str, value: str, role: Role, region: str | None, unit: str | None, by: str, now: datetime | None = None) -> SignInRole:
    if role is Role.device:
        raise MappingRefused("a device role cannot be given by signing in")
    try:
        check_scope(role, region, unit, None)
    except ValueError as exc:
        raise MappingRefused(str(exc)) from None
    if session.scalars(select(SignInRole).where(SignInRole.claim == claim, SignInRole.value == value)).first() is not None:
        raise MappingRefused(f"{claim}={value} is mapped already: remove that mapping first")
    row = SignInRole(claim=claim, value=value, role=role.value, region=region, unit=unit, created_at=now or datetime.now(timezone.utc), created_by=by)
    session.add(row)
    session.flush()
    return row


def list_mappings(session: Session) -> list[SignInRole]:
    return list(session.scalars(select(SignInRole).order_by(SignInRole.id)))


def remove_mapping(session: Session, mapping_id: int) -> SignInRole | None:
    row = session.get(SignInRole, mapping_id)
    if row is not None:
        session.delete(row)
    return row


def describe(row: SignInRole) -> str:
    """For the access log: `groups=vk-chef-vc01 -> clinic_manager unit SE2321000016-VC01`."""
    scope = f" unit {row.unit}" if row.unit else f" region {row.region}" if row.region else ""
    return f"{row.claim}={row.value} -> {row.role}{scope}"
