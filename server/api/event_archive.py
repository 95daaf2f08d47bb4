"""GET /units/{unit}/events (SPEC 4): the unit's stored events as JSON lines, the form `vardkoll replay`
reads, so anyone allowed to read a unit's figures can re-compute them from the raw events.

The archive is read in pages by its insertion order (`seq`), each page in its own short session, so a
long download holds no database session while the client reads.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Iterator

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from vardkoll.server.metrics import Period, end_of_day

from ..storage.stamp_keys import epoch_us
from ..storage.tables import StoredEvent
from .deps import FigureReader, ServicesDep, SessionDep, UnitInPath, confine_to_unit
from .figure_query import MAX_PERIOD_DAYS, _date, _problem

router = APIRouter(tags=["events"])
PAGE_ROWS = 5000
JSON_LINES = "application/x-ndjson"


def _period(period_from: str | None, period_to: str | None) -> Period:
    problems: list[dict] = []
    start, end = _date(period_from, "from", problems), _date(period_to, "to", problems)
    if start and end and end < start:
        problems.append(_problem("to", f"'to' ({end}) is before 'from' ({start})"))
    elif start and end and (end - start).days + 1 > MAX_PERIOD_DAYS:
        problems.append(_problem("to", f"the period is {(end - start).days + 1} days; at most {MAX_PERIOD_DAYS} (three years) are served"))
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems)
    return Period(start, end)  # type: ignore[arg-type]  # both set when there is no problem


@router.get("/units/{unit}/events", response_class=StreamingResponse, responses={200: {"content": {JSON_LINES: {}}}})
def unit_events(
    principal: FigureReader, unit: UnitInPath, session: SessionDep, services: ServicesDep,
    period_from: Annotated[str | None, Query(alias="from", description="first local date (the unit's time zone)")] = None,
    period_to: Annotated[str | None, Query(alias="to", description="last local date")] = None,
) -> StreamingResponse:
    """The unit's events whose `at` falls on a local date in [from, to], one JSON object a line, in the
    order they were stored (`vardkoll replay` gives the same figures in any order)."""
    confine_to_unit(session, principal, unit)
    period = _period(period_from, period_to)
    tz = services.units.config(unit).tz
    first_us = epoch_us(datetime.combine(period.start, time(0), tz))
    last_us = epoch_us(end_of_day(period.end, tz))
    sessions = services.sessions

    def lines() -> Iterator[bytes]:
        after = 0
        while True:
            with sessions() as page_session:
                rows = page_session.execute(
                    select(StoredEvent.seq, StoredEvent.body)
                    .where(StoredEvent.unit == unit, StoredEvent.seq > after, StoredEvent.at_us >= first_us, StoredEvent.at_us <= last_us)
                    .order_by(StoredEvent.seq).limit(PAGE_ROWS)
                ).all()
            if not rows:
                return
            yield b"".join(body + b"\n" for _, body in rows)
            after = rows[-1][0]

    filename = f"{unit}-events-{period.start}-{period.end}.jsonl"
    return StreamingResponse(lines(), media_type=JSON_LINES, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

