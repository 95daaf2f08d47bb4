"""A unit's stored events as JSON lines (SPEC 4): the raw data behind its figures, for audit.

`vardkoll replay --from D --to D` over an export that starts early enough (the continuity window is
18 months; a 3-day case or a listing snapshot may be older than the period) gives the API's figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.server.metrics.calendar import zone

from ..access_log.log import record_principal
from ..storage.stamp_keys import epoch_us
from ..storage.tables import StoredEvent
from .deps import FigureReader, ServicesDep, SessionDep, UnitInPath, confine_to_unit, invalid

router = APIRouter(tags=["events"])
PAGE_ROWS = 5000  # one short transaction per page: no connection is held while the client reads


def _local_midnight_us(day: date, time_zone: str) -> int:
    return epoch_us(datetime.combine(day, time(0), tzinfo=zone(time_zone)))


def _lines(sessions: sessionmaker[Session], unit: str, first_us: int, end_us: int) -> Iterator[bytes]:
    after = (first_us - 1, "")
    while True:
        with sessions() as session:
            rows = session.execute(
                select(StoredEvent.at_us, StoredEvent.event_id, StoredEvent.body)
                .where(StoredEvent.unit == unit, StoredEvent.at_us < end_us, tuple_(StoredEvent.at_us, StoredEvent.event_id) > tuple_(*after))
                .order_by(StoredEvent.at_us, StoredEvent.event_id)
                .limit(PAGE_ROWS)
            ).all()
        for _, _, body in rows:
            yield body + b"\n"
        if len(rows) < PAGE_ROWS:
            return
        after = (rows[-1][0], rows[-1][1])


@router.get(
    "/units/{unit}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One stored event per line, by time"}},
)
def export_events(
    request: Request,
    principal: FigureReader,
    unit: UnitInPath,
    session: SessionDep,
    services: ServicesDep,
    period_from: Annotated[date, Query(alias="from", description="first local date (the unit's time zone)")],
    period_to: Annotated[date, Query(alias="to", description="last local date")],
) -> StreamingResponse:
    """The unit's stored events whose local date is in [from, to], as validated (unknown fields dropped).
    Any span: the answer is streamed page by page."""
    confine_to_unit(session, principal, unit)
    if period_to < period_from:
        raise invalid("query", "to", f"'to' ({period_to}) is before 'from' ({period_from})")
    time_zone = services.units.config(unit).time_zone
    first_us = _local_midnight_us(period_from, time_zone)
    end_us = _local_midnight_us(period_to + timedelta(days=1), time_zone)
    record_principal(services.sessions, principal, request, "read:events", unit=unit, detail=f"events {period_from} to {period_to}")
    filename = f"vardkoll-{unit}-events-{period_from}-{period_to}.jsonl"
    return StreamingResponse(
        _lines(services.sessions, unit, first_us, end_us),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
