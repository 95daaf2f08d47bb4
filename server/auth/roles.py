"""Who is asking: the roles an API token can carry, and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    region_analyst = "region_analyst"  # reads figures and the registry of one region
    clinic_manager = "clinic_manager"  # reads figures and the registry of one unit
    installer = "installer"  # provisions devices in one region, or everywhere when region is null
    device = "device"  # posts events for its own unit and device, nothing else


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str
    token_id: int | None = None  # None for VARDKOLL_ADMIN_TOKEN
    region: str | None = None
    unit: str | None = None
    device: str | None = None
    signed_in: bool = False  # a session from the region's identity provider: the cookie only, never a bearer token
