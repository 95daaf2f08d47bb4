"""What a principal may see: pure rules over its role and scope, with no web framework in sight.

A role gate comes first (may this role use the resource at all?), then the scope (this unit, this
region?). Both raise OutOfScope with a message that says what the token is limited to.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .roles import Principal, Role

# Who may read figures, the unit registry and the dead letters.
FIGURE_READERS = frozenset({Role.admin, Role.region_analyst, Role.clinic_manager})
REGISTRY_READERS = frozenset({Role.admin, Role.region_analyst, Role.clinic_manager, Role.installer})
DEAD_LETTER_READERS = REGISTRY_READERS
EVENT_SENDERS = frozenset({Role.admin, Role.device})
ADMINS = frozenset({Role.admin})
DEVICE_MANAGERS = frozenset({Role.admin, Role.installer})


class OutOfScope(PermissionError):
    """The principal may not do this; the message is safe to show."""


def require_role(principal: Principal, roles: Collection[Role]) -> None:
    if principal.role not in roles:
        allowed = ", ".join(sorted(role.value for role in roles))
        raise OutOfScope(f"a {principal.role.value} token may not do this (allowed: {allowed})")


def in_scope(principal: Principal, unit: str, unit_region: str | None) -> bool:
    """`unit_region` is the unit's region in the registry, None when the unit is not registered."""
    if principal.role is Role.admin:
        return True
    if principal.unit is not None:
        return unit == principal.unit
    if principal.region is not None:
        return unit_region == principal.region
    return principal.role is Role.installer  # an installer without region works everywhere


def require_unit(principal: Principal, unit: str, unit_region: str | None) -> None:
    if in_scope(principal, unit, unit_region):
        return
    if principal.unit is not None:
        raise OutOfScope(f"this token is limited to unit {principal.unit}")
    raise OutOfScope(f"unit {unit} is not in region {principal.region}, to which this token is limited")


def require_region(principal: Principal, region: str, own_unit_region: str | None = None) -> None:
    """May the principal ask about `region`? A unit-bound principal only about its own unit's region."""
    if principal.role is Role.admin or (principal.role is Role.installer and principal.region is None):
        return
    if principal.unit is not None:
        if region != own_unit_region:
            raise OutOfScope(f"this token is limited to unit {principal.unit}, which is not in region {region}")
        return
    if region != principal.region:
        raise OutOfScope(f"this token is limited to region {principal.region}")


def visible_units(principal: Principal, registry: Iterable[tuple[str, str]]) -> list[str]:
    """The units of (unit, region) pairs that the principal may see, sorted."""
    return sorted(unit for unit, region in registry if in_scope(principal, unit, region))
