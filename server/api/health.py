"""Is the service up and can it work? No token needed (load balancers, systemd, Kubernetes, the demo).

- `/health`: the database, the broker and the version. The API serves while the broker is away (the
  consumer keeps reconnecting): that is `"status": "degraded"`, still 200, with `"broker":
  "disconnected"`; an unreachable database is 503.
- `/health/live`: the process answers (a liveness probe: restart it when this fails). Touches nothing.
- `/health/ready`: the database answers and, where this process consumes from the broker, it is
  connected (a readiness probe: send it no traffic until this passes). 503 with what is missing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..monitoring import version
from .deps import ServicesDep

router = APIRouter(tags=["health"])


def _database_ok(services: ServicesDep) -> bool:
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:  # the error text may name the database host or user: not for an anonymous caller
        return False
    return True


def _broker_state(request: Request) -> str | None:
    """None where this process consumes nothing (it serves the API only)."""
    consumer = getattr(request.app.state, "consumer", None)
    if consumer is None:
        return None
    return "connected" if consumer.connected.is_set() else "disconnected"


@router.get("/health")
def health(request: Request, services: ServicesDep) -> JSONResponse:
    state = _broker_state(request)
    broker = {} if state is None else {"broker": state}
    if not _database_ok(services):
        return JSONResponse({"status": "unavailable", "database": "unreachable", **broker, "version": version()}, status_code=503)
    return JSONResponse({"status": "degraded" if state == "disconnected" else "ok", "database": "ok", **broker, "version": version()})


@router.get("/health/live")
def live() -> JSONResponse:
    return JSONResponse({"status": "ok", "version": version()})


@router.get("/health/ready")
def ready(request: Request, services: ServicesDep) -> JSONResponse:
    database = "ok" if _database_ok(services) else "unreachable"
    broker = _broker_state(request) or "not_consuming"
    ok = database == "ok" and broker != "disconnected"
    return JSONResponse({"status": "ok" if ok else "unavailable", "database": database, "broker": broker, "version": version()}, status_code=200 if ok else 503)
