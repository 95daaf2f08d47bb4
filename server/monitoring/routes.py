"""`GET /metrics`: this process's metrics in Prometheus's text format, for a bearer token.

The token is `VARDKOLL_METRICS_TOKEN` (give the scraper only that one) or the admin token; in dev mode
no token is asked. nginx does not pass `/metrics` on from the outside (deploy/nginx/).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from ..storage.registry_tables import DeviceRow
from .metrics import REGISTRY, StateProbe

monitoring_router = APIRouter(include_in_schema=False)


@monitoring_router.get("/metrics")
def metrics(request: Request) -> Response:
    settings = request.app.state.services.settings
    if not settings.dev:
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        allowed = [secret.get_secret_value() for secret in (settings.metrics_token, settings.admin_token) if secret is not None]
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), secret.encode()) for secret in allowed):
            return JSONResponse(
                {"detail": "a metrics token is needed (Authorization: Bearer …; VARDKOLL_METRICS_TOKEN)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def state_probe(app: FastAPI) -> StateProbe:
    """How the scrape reads this app's state (see monitoring.metrics)."""
    services = app.state.services

    def pool_in_use() -> int | None:
        checked_out: Any = getattr(services.engine.pool, "checkedout", None)
        return checked_out() if callable(checked_out) else None

    def broker_connected() -> bool | None:
        consumer = app.state.consumer
        return None if consumer is None else consumer.connected.is_set()

    def silent_devices() -> int | None:
        table = DeviceRow.__table__
        try:
            with services.sessions() as session:
                return int(session.scalar(select(func.count()).select_from(table).where(table.c.retired_at.is_(None), table.c.status == "silent")) or 0)
        except Exception:  # noqa: BLE001  (the database is away: the gauge is left out, readiness says why)
            return None

    return StateProbe(
        live_streams=lambda: app.state.live.open_streams, pool_in_use=pool_in_use, broker_connected=broker_connected, silent_devices=silent_devices
    )
