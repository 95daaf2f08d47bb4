"""Is the service up, can it reach its database and its broker? No token needed (load balancers,
systemd, the demo). The API serves while the broker is away (the consumer keeps reconnecting): that is
`"status": "degraded"`, still 200, with `"broker": "disconnected"`; an unreachable database is 503."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request, services: ServicesDep) -> JSONResponse:
    consumer = getattr(request.app.state, "consumer", None)
    broker = {} if consumer is None else {"broker": "connected" if consumer.connected.is_set() else "disconnected"}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:  # the error text may name the database host or user: not for an anonymous caller
        return JSONResponse({"status": "unavailable", "database": "unreachable", **broker}, status_code=503)
    degraded = broker.get("broker") == "disconnected"
    return JSONResponse({"status": "degraded" if degraded else "ok", "database": "ok", **broker})
