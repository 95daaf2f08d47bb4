"""POST /events: the same events as over MQTT, for systems that push over HTTP (SPEC 4).

A device token speaks for its own unit and device only: an event for another unit, or naming another
device, is rejected on its own with a reason (and kept as a dead letter) while the rest are committed,
exactly as over MQTT. An admin token may send events of any unit.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..ingest.service import Source
from ..services import Services
from ..storage.tables import DeadLetter
from .deps import EventSender, ServicesDep
from .event_body import BodyRejected, parse_event_array, read_capped

router = APIRouter(tags=["events"])


class Rejection(BaseModel):
    id: str | None  # null when the event could not be read far enough to trust its id
    reason: str


class IngestResult(BaseModel):
    committed: list[str]  # ids stored now or before: the sender may forget them
    rejected: list[Rejection]
    new: int
    duplicates: int


def _refused(services: Services, source: Source, refusal: BodyRejected, body: bytes | None) -> JSONResponse:
    """Keep a refused body's reason, digest and size (never its content) as a dead letter, and say why."""
    if body is not None:
        services.ingest.refuse_payload(refusal.reason, source, body)
    else:  # too large to read: only the reason
        with services.sessions.begin() as session:
            session.add(
                DeadLetter(received_at=datetime.now(timezone.utc), source=source.transport, unit=source.unit, device=source.device, reason=refusal.reason)
            )
    return JSONResponse({"detail": refusal.reason}, status_code=refusal.status)


def _ingest_body(services: Services, source: Source, body: bytes) -> IngestResult | JSONResponse:
    try:
        items = parse_event_array(body, services.settings.max_batch_events)
    except BodyRejected as refusal:
        return _refused(services, source, refusal, body)
    report = services.ingest.ingest(items, source)
    return IngestResult(
        committed=report.committed,
        rejected=[Rejection(id=event_id, reason=reason) for event_id, reason in report.rejected],
        new=report.new,
        duplicates=report.duplicates,
    )


@router.post(
    "/events",
    responses={400: {"description": "the body is not a JSON array"}, 413: {"description": "the body or the event count is too large"}},
)
async def post_events(request: Request, principal: EventSender, services: ServicesDep) -> IngestResult:
    """Take a JSON array of v1 events; each is committed or rejected with a reason. Repeats are harmless."""
    source = Source("http", unit=principal.unit, device=principal.device)
    try:
        body = await read_capped(request, services.settings.max_payload_bytes)
    except BodyRejected as refusal:
        return await run_in_threadpool(_refused, services, source, refusal, None)  # type: ignore[return-value]  # the threadpool returns what the function returns
    # Parsing a few MB and committing are blocking work: off the event loop.
    return await run_in_threadpool(_ingest_body, services, source, body)  # type: ignore[return-value]  # the threadpool returns what the function returns
