"""Wire protocol v1 (SPEC 3.1): the event types, one frozen struct per event type.

Structs are msgspec's: decoding and validating a JSON event takes about as long as merely parsing it,
which is what lets replay and ingest reach the speeds SPEC 6 asks for. Types are strict (no "1" for 1,
no "true" for true) and unknown fields are ignored. Turning raw input into events, with reasons a
person can act on, lives in `protocol.validation`.
"""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any, Callable, ClassVar, Literal, Union, get_args, get_type_hints

import msgspec
from msgspec import Meta, Struct

from .field_rules import (
    DEVICE_ID_PATTERN,
    EVENT_ID_PATTERN,
    HSA_ID_PATTERN,
    MAX_PSEUDONYM_FIELDS,
    PSEUDONYM_PATTERN,
    RULE_PREFIX,
    check_event,
    check_pseudonyms,
    is_plausible_at,
)

PROTOCOL_VERSION = 1

# The patterns are published in the JSON Schema but checked by `field_rules` in __post_init__, not by
# msgspec: msgspec calls re.search per field through the C API, which made up three quarters of the
# time to decode an event (1.8 of 2.2 µs); field_rules remembers units and devices, which repeat.
Timestamp = Annotated[datetime, Meta(tz=True, description="RFC 3339 time with offset")]
EventId = Annotated[str, Meta(extra_json_schema={"pattern": EVENT_ID_PATTERN})]
HsaId = Annotated[str, Meta(extra_json_schema={"pattern": HSA_ID_PATTERN})]
Pseudonym = Annotated[str, Meta(extra_json_schema={"pattern": PSEUDONYM_PATTERN})]
DeviceId = Annotated[str, Meta(extra_json_schema={"pattern": DEVICE_ID_PATTERN})]
QueueName = Annotated[str, Meta(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]  # no control characters
# Counts of patients and doctors: bounded so that no path (MQTT, HTTP, replay) takes 2**63 as a denominator.
MAX_COUNT = 10_000_000
Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]

Profession = Literal["doctor", "nurse", "physiotherapist", "psychologist", "occupational_therapist", "other_licensed"]
AssessmentForm = Literal["physical", "phone", "video", "chat", "letter", "home"]
ContactChannel = Literal["phone", "digital", "visit", "other"]
RejectionReason = Literal["queue_full", "closed"]
ExclusionReason = Literal["patient_choice", "medical"]


class EventBase(Struct, frozen=True, kw_only=True, tag_field="type"):
    v: Literal[1]
    id: EventId
    unit: HsaId
    at: Timestamp
    device: DeviceId | None = None

    pseudonym_fields: ClassVar[tuple[str, ...]] = ()  # filled in below, from the annotations
    # The id and those fields in one C call, for `check_event`'s common case; filled in below.
    id_and_pseudonyms: ClassVar[Callable[[Any], tuple[str | None, ...]]] = staticmethod(lambda event: (event.id,))

    __post_init__ = check_event  # type: ignore[misc]  # assigned, not defined: the character rules run without a frame of their own

    @property
    def type(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]  # msgspec types a tag as str | int; ours are strings


class CallOffered(EventBase, frozen=True, tag="call.offered"):
    call: Pseudonym
    queue: QueueName | None = None


class CallAnswered(EventBase, frozen=True, tag="call.answered"):
    call: Pseudonym


class CallbackBooked(EventBase, frozen=True, tag="call.callback_booked"):
    call: Pseudonym
    slot: Timestamp | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.slot is not None and not is_plausible_at(self.slot):
            raise ValueError(RULE_PREFIX + "slot")


class CallbackDone(EventBase, frozen=True, tag="call.callback_done"):
    call: Pseudonym
    reached: bool = True


class CallAbandoned(EventBase, frozen=True, tag="call.abandoned"):
    call: Pseudonym


class CallRejected(EventBase, frozen=True, tag="call.rejected"):
    call: Pseudonym
    reason: RejectionReason


class CareContact(EventBase, frozen=True, tag="care.contact"):
    case: Pseudonym
    listed: bool
    channel: ContactChannel
    patient: Pseudonym | None = None


class CareAssessed(EventBase, frozen=True, tag="care.assessed"):
    case: Pseudonym
    profession: Profession
    form: AssessmentForm


class CareExcluded(EventBase, frozen=True, tag="care.excluded"):
    case: Pseudonym
    reason: ExclusionReason


class CareCancelled(EventBase, frozen=True, tag="care.cancelled"):
    case: Pseudonym


class DoctorListing(Struct, frozen=True, kw_only=True):
    doctor: Pseudonym
    listed: Count
    active: bool = True

    pseudonym_fields: ClassVar[tuple[str, ...]] = ("doctor",)

    def __post_init__(self) -> None:
        check_pseudonyms(self)


class ListingSnapshot(EventBase, frozen=True, tag="listing.snapshot"):
    listed: Count
    named_doctor: Count
    doctors: tuple[DoctorListing, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.named_doctor > self.listed:
            raise ValueError("named_doctor exceeds listed")


class VisitCompleted(EventBase, frozen=True, tag="visit.completed"):
    patient: Pseudonym
    practitioner: Pseudonym
    profession: Profession
    listed: bool
    fixed_doctor: Pseudonym | None = None
    form: AssessmentForm | None = None


EVENT_CLASSES: tuple[type[EventBase], ...] = (
    CallOffered,
    CallAnswered,
    CallbackBooked,
    CallbackDone,
    CallAbandoned,
    CallRejected,
    CareContact,
    CareAssessed,
    CareExcluded,
    CareCancelled,
    ListingSnapshot,
    VisitCompleted,
)
EVENT_TYPES: tuple[str, ...] = tuple(cls.__struct_config__.tag for cls in EVENT_CLASSES)  # type: ignore[misc]  # every event class has a tag (a str) by construction
CLASS_OF_TYPE: dict[str, type[EventBase]] = dict(zip(EVENT_TYPES, EVENT_CLASSES))


def _pseudonym_fields(cls: type) -> tuple[str, ...]:
    return tuple(name for name, hint in get_type_hints(cls, include_extras=True).items() if hint == Pseudonym or Pseudonym in get_args(hint))


for _cls in EVENT_CLASSES:
    _cls.pseudonym_fields = _pseudonym_fields(_cls)
    if _cls.pseudonym_fields:  # attrgetter of one name returns the value, not a tuple: keep the default
        _cls.id_and_pseudonyms = attrgetter("id", *_cls.pseudonym_fields)
    assert len(_cls.pseudonym_fields) <= MAX_PSEUDONYM_FIELDS
assert _pseudonym_fields(DoctorListing) == DoctorListing.pseudonym_fields

Event = Union[EVENT_CLASSES]  # type: ignore[valid-type]  # a Union built from a tuple of classes, which msgspec reads at run time
EVENT_DECODER = msgspec.json.Decoder(Event)
EVENT_LIST_DECODER = msgspec.json.Decoder(list[Event])


def allowed_values(event_type: str, field: str) -> tuple[str, ...]:
    """The values a Literal-typed field of an event type accepts (for error messages and docs)."""
    cls = CLASS_OF_TYPE.get(event_type, DoctorListing if field == "active" else EventBase)
    hint = cls.__annotations__.get(field)
    for klass in cls.__mro__:
        hint = hint or getattr(klass, "__annotations__", {}).get(field)
    return tuple(str(arg) for arg in _literal_args(hint))


def _literal_args(hint: object) -> tuple[object, ...]:
    if isinstance(hint, str):
        hint = eval(hint, globals())  # annotations are strings under `from __future__ import annotations`
    args = get_args(hint)
    if getattr(hint, "__origin__", None) is Literal:
        return args
    return tuple(value for arg in args for value in _literal_args(arg))
