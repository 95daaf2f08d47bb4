"""Read a POST /events body: a JSON array of v1 events, each judged on its own.

A clean array (no personal-number candidates, every event valid) is decoded in one pass; otherwise each
item is validated by `protocol.validate_event`, so one bad event never costs the others. Reasons never
repeat a value from the body.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from fastapi import Request

from vardkoll.protocol import EventRejected, validate_event
from vardkoll.protocol.validation import MAX_EVENT_BYTES
from vardkoll.protocol.events import Event
from vardkoll.protocol.personal_number import raw_may_contain_personal_number

_ARRAY_DECODER = msgspec.json.Decoder(list[Event])  # type: ignore[valid-type]  # Event is a Union built at run time (protocol/events.py)
_RAW_ARRAY_DECODER = msgspec.json.Decoder(list[msgspec.Raw])


class BodyRejected(ValueError):
    """The body as a whole cannot be taken; `status` is the HTTP status, the message is safe to show and store."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The body, or BodyRejected(413) as soon as it grows past `max_bytes` (before reading the rest)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyRejected(413, f"the body has {int(declared)} bytes; at most {max_bytes} are accepted per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyRejected(413, f"the body has more than {max_bytes} bytes; at most {max_bytes} are accepted per request")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_event_array(body: bytes, max_events: int) -> list[Any]:
    """One item per array element: the event, or EventRejected with a reason naming the element's position."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyRejected(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, list):
        hint = ' (send the batch\'s "events" list, not the batch object)' if isinstance(document, dict) and "events" in document else ""
        raise BodyRejected(400, f"the body must be a JSON array of events{hint}")
    if len(document) > max_events:
        raise BodyRejected(413, f"the body holds {len(document)} events; at most {max_events} are accepted per request")
    if not raw_may_contain_personal_number(body) and not _holds_oversized_event(body):
        try:
            return list(_ARRAY_DECODER.decode(body))
        except (msgspec.DecodeError, RecursionError):
            pass  # judged one by one below, with reasons
    items: list[Any] = []
    for position, item in enumerate(document):
        try:
            items.append(validate_event(item))
        except EventRejected as exc:
            items.append(EventRejected(f"array item {position}: {exc.reason}", exc.event_id))
    return items


def _holds_oversized_event(body: bytes) -> bool:
    """The fast decode ignores unknown fields, so it would take a 3 MB event: look at each one's size
    first (only a body over the limit can hold one)."""
    if len(body) <= MAX_EVENT_BYTES:
        return False
    return any(len(raw) > MAX_EVENT_BYTES for raw in _RAW_ARRAY_DECODER.decode(body))
