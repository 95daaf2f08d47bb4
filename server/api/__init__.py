"""The REST API (SPEC 4): one router module per resource, mounted under /api/v1."""

from fastapi import APIRouter

from . import (
    access_log,
    alerts,
    audits,
    compliance,
    regions,
    dead_letters,
    devices,
    enrollment,
    event_export,
    events,
    health,
    live,
    profile,
    remote_config,
    reports,
    series,
    sign_in_roles,
    tokens,
    units,
)

api_router = APIRouter(prefix="/api/v1")
for _module in (
    health,
    compliance,
    regions,
    series,
    live,
    units,
    devices,
    remote_config,
    events,
    event_export,
    dead_letters,
    tokens,
    enrollment,
    access_log,
    alerts,
    reports,
    sign_in_roles,
    audits,
    profile,
):
    api_router.include_router(_module.router)

__all__ = ["api_router"]
