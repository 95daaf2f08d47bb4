"""When two events with the same id are the same event (SPEC 3.1: an event seen twice counts once).

Every field counts except `device`: an event re-sent by a replacement device is still the same event.
The same id with other content is a conflict, refused by ingest and by replay alike.
"""

from __future__ import annotations

from typing import Any

from msgspec.structs import astuple

from .events import EVENT_CLASSES, EventBase

_DEVICE_INDEX = {cls: cls.__struct_fields__.index("device") for cls in EVENT_CLASSES}


def event_content(event: EventBase) -> tuple[Any, ...]:
    """What must be equal for two events with one id to be the same event."""
    values = astuple(event)
    device = _DEVICE_INDEX[type(event)]
    return (type(event), values[:device], values[device + 1 :])


def same_event(a: EventBase, b: EventBase) -> bool:
    return event_content(a) == event_content(b)
