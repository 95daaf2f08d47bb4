"""Live figures (server-sent events) for one unit or a region: pushed within a second of a change."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from vardkoll.server.metrics import METRICS

from ..auth import visible_units
from ..live.stream import figure_events
from ..storage.registry_tables import UnitRow
from .deps import FigureReader, ServicesDep, check_hsa_id, confine_to_region, confine_to_unit, invalid

router = APIRouter(tags=["live"])


@router.get("/live", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
def live(
    request: Request,
    principal: FigureReader,
    services: ServicesDep,
    unit: Annotated[str | None, Query(description="one unit's HSA-id")] = None,
    region: Annotated[str | None, Query(description="every unit of a region")] = None,
    metric: Annotated[list[str] | None, Query(description="metrics to send (default: all four)")] = None,
    period_from: Annotated[date | None, Query(alias="from", description="first local date (default: today)")] = None,
    period_to: Annotated[date | None, Query(alias="to", description="last local date (default: today)")] = None,
) -> StreamingResponse:
    """`event: figures` with the current figures at once, then again whenever a unit's data changes;
    a comment line every 15 s keeps the connection open."""
    if (unit is None) == (region is None):
        raise invalid("query", "unit", "give exactly one of unit or region")
    metrics = metric or list(METRICS)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise invalid("query", "metric", f"unknown metric {unknown[0]!r}; expected one of: {', '.join(METRICS)}")
    if period_from and period_to and period_to < period_from:
        raise invalid("query", "to", "to is before from")
    # A session of its own, closed before the stream starts: a stream holds no database connection
    # while it waits (a request-scoped session would be held for the stream's whole life).
    with services.sessions() as session:
        if unit is not None:
            confine_to_unit(session, principal, check_hsa_id(unit, "query", "unit"))
            units = [unit]
        else:
            confine_to_region(session, principal, region)  # type: ignore[arg-type]  # region is set whenever this branch runs (checked above)
            registry = [(u, r) for u, r in session.execute(select(UnitRow.unit, UnitRow.region)).all() if r == region]
            units = visible_units(principal, registry)
    stream = figure_events(services, request.app.state.live, units, metrics, period_from, period_to)
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
