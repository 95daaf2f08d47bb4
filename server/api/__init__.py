"""The REST API (SPEC 4): one router module per resource, mounted under /api/v1."""

from fastapi import APIRouter

from . import compliance, dead_letters, devices, enrollment, events, health, live, remote_config, tokens, units

api_router = APIRouter(prefix="/api/v1")
for _module in (health, compliance, live, units, devices, remote_config, events, dead_letters, tokens, enrollment):
    api_router.include_router(_module.router)

__all__ = ["api_router"]
