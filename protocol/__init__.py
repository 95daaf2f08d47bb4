"""The wire contract shared by collector, bridge and server: event models, validation, the
personal-number guard and topic names. Imports nothing heavier than pydantic and orjson."""

from .events import (
    EVENT_CLASSES,
    EVENT_TYPES,
    PROTOCOL_VERSION,
    CallAbandoned,
    CallAnswered,
    CallbackBooked,
    CallbackDone,
    CallOffered,
    CallRejected,
    CareAssessed,
    CareCancelled,
    CareContact,
    CareExcluded,
    DoctorListing,
    EventBase,
    ListingSnapshot,
    VisitCompleted,
)
from .personal_number import contains_personal_number, find_personal_number
from .schema import batch_schema, event_schema
from .validation import MAX_EVENT_BYTES, EventRejected, parse_event_line, validate_event

__all__ = [
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "PROTOCOL_VERSION",
    "CallAbandoned",
    "CallAnswered",
    "CallOffered",
    "CallRejected",
    "CallbackBooked",
    "CallbackDone",
    "CareAssessed",
    "CareCancelled",
    "CareContact",
    "CareExcluded",
    "DoctorListing",
    "EventBase",
    "EventRejected",
    "ListingSnapshot",
    "VisitCompleted",
    "batch_schema",
    "contains_personal_number",
    "event_schema",
    "find_personal_number",
    "parse_event_line",
    "validate_event",
]
