"""JSON Schema of a v1 event and of a collector batch, generated from the event structs."""

from __future__ import annotations

from typing import Any

import msgspec

from .events import DEVICE_ID_PATTERN, Event

_DESCRIPTION = (
    "One event as a collector sends it. Unknown fields are ignored. No string anywhere may hold a Swedish "
    "personal identity or coordination number: such events are refused whole."
)


def event_schema() -> dict[str, Any]:
    schema = msgspec.json.schema(Event)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "vardkoll event v1", "description": _DESCRIPTION, **schema}


def batch_schema() -> dict[str, Any]:
    """The MQTT payload a collector publishes: {"device": ..., "events": [...]}."""
    events = msgspec.json.schema(Event)
    defs = events.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vardkoll event batch v1",
        "type": "object",
        "required": ["device", "events"],
        "properties": {
            "device": {"type": "string", "pattern": DEVICE_ID_PATTERN},
            "events": {"type": "array", "items": events},
        },
        "$defs": defs,
    }
