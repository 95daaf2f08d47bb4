"""The MQTT batch payload `{"device": ..., "events": [...]}` (SPEC 3.3), read fast when it is clean.

A clean batch (no personal-number candidates, every event valid) is decoded in one pass; otherwise each
event is judged on its own, so one bad event never costs the others.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

from .events import DeviceId, Event
from .field_rules import DEVICE_ID_PATTERN
from .personal_number import raw_may_contain_personal_number
from .validation import MAX_EVENT_BYTES, EventRejected, validate_event


class BatchRejected(ValueError):
    """The payload as a whole cannot be read; `reason` is safe to show and store."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Batch(msgspec.Struct, frozen=True):
    events: list[Event]
    device: DeviceId | None = None

    def __post_init__(self) -> None:  # DeviceId's pattern is documentation only (see events.py)
        if self.device is not None and _DEVICE_ID.search(self.device) is None:
            raise ValueError("field 'device' breaks its rule")


class _RawBatch(msgspec.Struct):
    events: list[msgspec.Raw]


_BATCH_DECODER = msgspec.json.Decoder(Batch)
_RAW_BATCH_DECODER = msgspec.json.Decoder(_RawBatch)


def _holds_oversized_event(payload: bytes) -> bool:
    """Whether any one event is over MAX_EVENT_BYTES (unknown fields are ignored by the fast decode, so
    a 3 MB event would pass it). Only a payload over the limit can hold one: small batches skip this."""
    if len(payload) <= MAX_EVENT_BYTES:
        return False
    return any(len(raw) > MAX_EVENT_BYTES for raw in _RAW_BATCH_DECODER.decode(payload).events)


_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)


def parse_batch(payload: bytes, max_events: int) -> tuple[str | None, list[Any]]:
    """(the batch's device, one item per event: the event, or EventRejected with the reason)."""
    if not raw_may_contain_personal_number(payload):
        try:
            batch = _BATCH_DECODER.decode(payload)
        except (msgspec.DecodeError, RecursionError):
            pass  # judged event by event below, with reasons
        else:
            if len(batch.events) > max_events:
                raise BatchRejected(f"batch holds {len(batch.events)} events; at most {max_events} are accepted")
            if not _holds_oversized_event(payload):
                return batch.device, list(batch.events)
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BatchRejected(f"payload is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BatchRejected('payload must be an object {"device": ..., "events": [...]}')
    events = document["events"]
    if len(events) > max_events:
        raise BatchRejected(f"batch holds {len(events)} events; at most {max_events} are accepted")
    device = document.get("device")
    if device is not None and not (isinstance(device, str) and _DEVICE_ID.search(device)):
        raise BatchRejected("field 'device' must be 1–64 characters of A–Z, a–z, 0–9 and . _ -")
    items: list[Any] = []
    for item in events:
        try:
            items.append(validate_event(item))
        except EventRejected as exc:
            items.append(exc)
    return device, items
