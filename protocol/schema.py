"""JSON Schema of a v1 event and of a collector batch, generated from the event structs."""

from __future__ import annotations

from typing import Any

import msgspec

from .events import Event
from .field_rules import DEVICE_ID_PATTERN

_DESCRIPTION = (
    "One event as a collector sends it. Unknown fields are ignored. No string anywhere may hold a Swedish "
    "personal identity or coordination number: such events are refused whole."
)


def _portable(schema: Any) -> Any:
    """Patterns end in "$(?!\\n)" for Python's re; RE2 (Go) and others cannot compile lookaheads, and in
    ECMA-262 "$" already means the very end."""
    if isinstance(schema, dict):
        return {key: (value.replace("$(?!\\n)", "$") if key == "pattern" else _portable(value)) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_portable(item) for item in schema]
    return schema


def event_schema() -> dict[str, Any]:
    schema = _portable(msgspec.json.schema(Event))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "vardkoll event v1", "description": _DESCRIPTION, **schema}


def batch_schema() -> dict[str, Any]:
    """The MQTT payload a collector publishes: {"device": ..., "events": [...]}."""
    events = _portable(msgspec.json.schema(Event))
    defs = events.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vardkoll event batch v1",
        "type": "object",
        "required": ["device", "events"],
        "properties": {
            "device": {"type": "string", "pattern": DEVICE_ID_PATTERN.replace("$(?!\\n)", "$")},
            "events": {"type": "array", "items": events},
        },
        "$defs": defs,
    }
