"""The public surface of `vardkoll.protocol` (SPEC 4: surfaces that must stay stable)."""

from __future__ import annotations

import subprocess
import sys

import vardkoll.protocol as protocol
from vardkoll.protocol import personal_number

EXPECTED_ALL = [
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

SPEC_EVENT_TYPES = (
    "call.offered",
    "call.answered",
    "call.callback_booked",
    "call.callback_done",
    "call.abandoned",
    "call.rejected",
    "care.contact",
    "care.assessed",
    "care.excluded",
    "care.cancelled",
    "listing.snapshot",
    "visit.completed",
)


def test_all_pins_the_exported_names():
    assert list(protocol.__all__) == EXPECTED_ALL


def test_all_has_no_duplicates_and_no_private_names():
    assert len(set(protocol.__all__)) == len(protocol.__all__)
    assert not [name for name in protocol.__all__ if name.startswith("_")]


def test_every_exported_name_exists():
    for name in protocol.__all__:
        assert hasattr(protocol, name), name


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from vardkoll.protocol import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(EXPECTED_ALL)


def test_personal_number_module_exports_the_guard():
    assert list(personal_number.__all__) == [
        "contains_personal_number",
        "find_personal_number",
        "raw_may_contain_personal_number",
    ]
    assert protocol.contains_personal_number is personal_number.contains_personal_number
    assert protocol.find_personal_number is personal_number.find_personal_number


def test_protocol_constants():
    assert protocol.PROTOCOL_VERSION == 1
    assert protocol.MAX_EVENT_BYTES == 64 * 1024


def test_event_types_are_the_spec_types_in_spec_order():
    assert protocol.EVENT_TYPES == SPEC_EVENT_TYPES


def test_event_classes_line_up_with_event_types():
    classes = protocol.EVENT_CLASSES
    assert len(classes) == len(protocol.EVENT_TYPES)
    expected = (
        protocol.CallOffered,
        protocol.CallAnswered,
        protocol.CallbackBooked,
        protocol.CallbackDone,
        protocol.CallAbandoned,
        protocol.CallRejected,
        protocol.CareContact,
        protocol.CareAssessed,
        protocol.CareExcluded,
        protocol.CareCancelled,
        protocol.ListingSnapshot,
        protocol.VisitCompleted,
    )
    assert classes == expected
    for cls in classes:
        assert issubclass(cls, protocol.EventBase)


def test_each_event_type_decodes_to_its_class():
    header = {"v": 1, "id": "ev-0001", "unit": "SE2321000016-VC01", "at": "2026-03-02T08:00:00+01:00"}
    bodies = {
        "call.offered": {"call": "c-000001"},
        "call.answered": {"call": "c-000001"},
        "call.callback_booked": {"call": "c-000001"},
        "call.callback_done": {"call": "c-000001"},
        "call.abandoned": {"call": "c-000001"},
        "call.rejected": {"call": "c-000001", "reason": "closed"},
        "care.contact": {"case": "k-000001", "listed": True, "channel": "phone"},
        "care.assessed": {"case": "k-000001", "profession": "nurse", "form": "phone"},
        "care.excluded": {"case": "k-000001", "reason": "medical"},
        "care.cancelled": {"case": "k-000001"},
        "listing.snapshot": {"listed": 1, "named_doctor": 1},
        "visit.completed": {"patient": "p-000001", "practitioner": "d-000001", "profession": "doctor", "listed": True},
    }
    for cls, type_ in zip(protocol.EVENT_CLASSES, protocol.EVENT_TYPES):
        parsed = protocol.validate_event({**header, "type": type_, **bodies[type_]})
        assert type(parsed) is cls and parsed.type == type_


def test_event_rejected_is_a_value_error():
    assert issubclass(protocol.EventRejected, ValueError)
    assert protocol.EventRejected("why").reason == "why"


def test_schemas_are_json_schema_documents():
    event = protocol.event_schema()
    batch = protocol.batch_schema()
    assert event["$schema"] == batch["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert batch["required"] == ["device", "events"]


def test_importing_the_protocol_pulls_in_nothing_heavier_than_pydantic_and_orjson():
    code = (
        "import sys, vardkoll.protocol, vardkoll.protocol.topics;"
        "heavy = {'fastapi', 'starlette', 'sqlmodel', 'sqlalchemy', 'typer', 'rich', 'hypothesis', 'pytest'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
