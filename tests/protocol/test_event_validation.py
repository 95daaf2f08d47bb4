"""Event validation (SPEC 3.1): one test per rule, reasons that name the field and the rule.

`validate_event(obj)` takes a decoded event, `parse_event_line(bytes)` a raw JSON document; both
raise `EventRejected` whose `.reason` is one line, safe to store, and never repeats the bad value.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vardkoll.protocol import events as ev
from vardkoll.protocol import validation
from vardkoll.protocol.validation import MAX_EVENT_BYTES, EventRejected, parse_event_line, validate_event

UNIT = "SE2321000016-VC01"
AT = "2026-03-02T08:00:00+01:00"
HEADER = {"v": 1, "id": "ev-0001", "unit": UNIT, "at": AT}

MINIMAL: dict[str, dict] = {
    "call.offered": {"call": "c-000001"},
    "call.answered": {"call": "c-000001"},
    "call.callback_booked": {"call": "c-000001"},
    "call.callback_done": {"call": "c-000001"},
    "call.abandoned": {"call": "c-000001"},
    "call.rejected": {"call": "c-000001", "reason": "queue_full"},
    "care.contact": {"case": "k-000001", "listed": True, "channel": "phone"},
    "care.assessed": {"case": "k-000001", "profession": "nurse", "form": "phone"},
    "care.excluded": {"case": "k-000001", "reason": "patient_choice"},
    "care.cancelled": {"case": "k-000001"},
    "listing.snapshot": {"listed": 8100, "named_doctor": 4860},
    "visit.completed": {"patient": "p-000001", "practitioner": "d-anna1", "profession": "doctor", "listed": True},
}

# Every optional field set.
FULL: dict[str, dict] = {
    "call.offered": {"call": "c-000001", "queue": "rådgivning", "device": "collector-1"},
    "call.answered": {"call": "c-000001", "device": "collector-1"},
    "call.callback_booked": {"call": "c-000001", "slot": "2026-03-02T14:00:00+01:00", "device": "collector-1"},
    "call.callback_done": {"call": "c-000001", "reached": False, "device": "collector-1"},
    "call.abandoned": {"call": "c-000001", "device": "collector-1"},
    "call.rejected": {"call": "c-000001", "reason": "closed", "device": "collector-1"},
    "care.contact": {"case": "k-000001", "listed": False, "channel": "digital", "patient": "p-000001", "device": "c1"},
    "care.assessed": {"case": "k-000001", "profession": "occupational_therapist", "form": "video", "device": "c1"},
    "care.excluded": {"case": "k-000001", "reason": "medical", "device": "collector-1"},
    "care.cancelled": {"case": "k-000001", "device": "collector-1"},
    "listing.snapshot": {
        "listed": 8100,
        "named_doctor": 4860,
        "doctors": [{"doctor": "doc-anna", "listed": 1500}, {"doctor": "doc-gone", "listed": 0, "active": False}],
        "device": "collector-1",
    },
    "visit.completed": {
        "patient": "p-000001",
        "practitioner": "d-anna1",
        "profession": "doctor",
        "listed": True,
        "fixed_doctor": "d-anna1",
        "form": "physical",
        "device": "collector-1",
    },
}

REQUIRED: dict[str, list[str]] = {
    "call.offered": ["call"],
    "call.answered": ["call"],
    "call.callback_booked": ["call"],
    "call.callback_done": ["call"],
    "call.abandoned": ["call"],
    "call.rejected": ["call", "reason"],
    "care.contact": ["case", "listed", "channel"],
    "care.assessed": ["case", "profession", "form"],
    "care.excluded": ["case", "reason"],
    "care.cancelled": ["case"],
    "listing.snapshot": ["listed", "named_doctor"],
    "visit.completed": ["patient", "practitioner", "profession", "listed"],
}

ENUMS: list[tuple[str, str, tuple[str, ...]]] = [
    ("call.rejected", "reason", ("queue_full", "closed")),
    ("care.contact", "channel", ("phone", "digital", "visit", "other")),
    ("care.assessed", "profession", ("doctor", "nurse", "physiotherapist", "psychologist", "occupational_therapist", "other_licensed")),
    ("care.assessed", "form", ("physical", "phone", "video", "chat", "letter", "home")),
    ("care.excluded", "reason", ("patient_choice", "medical")),
    ("visit.completed", "profession", ("doctor", "nurse", "physiotherapist", "psychologist", "occupational_therapist", "other_licensed")),
    ("visit.completed", "form", ("physical", "phone", "video", "chat", "letter", "home")),
]

PSEUDONYM_FIELDS = [
    ("call.answered", "call"),
    ("care.cancelled", "case"),
    ("care.contact", "patient"),
    ("visit.completed", "patient"),
    ("visit.completed", "practitioner"),
    ("visit.completed", "fixed_doctor"),
]

BOOL_FIELDS = [("care.contact", "listed"), ("visit.completed", "listed"), ("call.callback_done", "reached")]
COUNT_FIELDS = ["listed", "named_doctor"]


def event(type_: str, **changes) -> dict:
    body = {**HEADER, "type": type_, **copy.deepcopy(MINIMAL[type_])}
    body.update(changes)
    return body


def reason_for(obj) -> str:
    with pytest.raises(EventRejected) as caught:
        validate_event(obj)
    reason = caught.value.reason
    assert_safe_reason(reason)
    return reason


def line_reason(raw: bytes) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_event_line(raw)
    reason = caught.value.reason
    assert_safe_reason(reason)
    return reason


def assert_safe_reason(reason: str) -> None:
    assert isinstance(reason, str) and reason
    assert "\n" not in reason and "\r" not in reason
    assert "Traceback" not in reason and 'File "' not in reason
    assert "errors.pydantic.dev" not in reason


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


# --- every type accepts its examples -------------------------------------------------------------


def test_every_event_type_has_examples():
    assert set(MINIMAL) == set(FULL) == set(REQUIRED) == set(ev.EVENT_TYPES)


@pytest.mark.parametrize("type_", ev.EVENT_TYPES)
def test_every_event_type_accepts_a_minimal_valid_example(type_):
    parsed = validate_event(event(type_))
    cls = dict(zip(ev.EVENT_TYPES, ev.EVENT_CLASSES))[type_]
    assert type(parsed) is cls
    assert parsed.type == type_ and parsed.v == 1 and parsed.unit == UNIT and parsed.device is None
    assert parse_event_line(dumps(event(type_))) == parsed


@pytest.mark.parametrize("type_", ev.EVENT_TYPES)
def test_every_event_type_accepts_the_full_example(type_):
    body = {**HEADER, "type": type_, **FULL[type_]}
    parsed = validate_event(body)
    for name, value in FULL[type_].items():
        if name == "doctors":
            rows = [(d.doctor, d.listed, d.active) for d in parsed.doctors]
            assert rows == [(row["doctor"], row["listed"], row.get("active", True)) for row in value]
        elif name == "slot":
            assert parsed.slot.isoformat() == value
        else:
            assert getattr(parsed, name) == value
    assert parse_event_line(dumps(body)) == parsed


def test_listing_snapshot_with_a_doctors_list_is_accepted():
    doctors = [{"doctor": "doc-anna", "listed": 1500}, {"doctor": "doc-gone", "listed": 0, "active": False}]
    body = event("listing.snapshot", doctors=doctors)
    parsed = validate_event(body)
    assert [d.doctor for d in parsed.doctors] == ["doc-anna", "doc-gone"]
    assert [d.active for d in parsed.doctors] == [True, False]
    assert parse_event_line(dumps(body)) == parsed


def test_callback_slot_is_parsed_as_an_aware_time():
    parsed = validate_event(event("call.callback_booked", slot="2026-03-02T14:00:00+01:00"))
    assert parsed.slot == datetime(2026, 3, 2, 14, tzinfo=timezone(timedelta(hours=1)))


def test_at_is_parsed_with_its_offset_and_z_means_utc():
    assert validate_event(event("call.answered")).at.utcoffset() == timedelta(hours=1)
    assert validate_event(event("call.answered", at="2026-03-02T07:00:00Z")).at == datetime(2026, 3, 2, 7, tzinfo=timezone.utc)


# --- required fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "name"), [(t, n) for t, names in REQUIRED.items() for n in names])
def test_missing_required_field_is_refused_and_named(type_, name):
    body = event(type_)
    del body[name]
    assert reason_for(body) == f"missing field '{name}'"


@pytest.mark.parametrize("name", ["v", "id", "unit", "at"])
def test_missing_header_field_is_refused_and_named(name):
    body = event("call.answered")
    del body[name]
    assert reason_for(body) == f"missing field '{name}'"


def test_missing_listed_on_care_contact_says_missing_field_listed():
    body = event("care.contact")
    del body["listed"]
    assert reason_for(body) == "missing field 'listed'"


def test_missing_type_is_refused_and_named():
    body = event("call.answered")
    del body["type"]
    assert reason_for(body) == "missing field 'type'"


def test_several_problems_still_give_one_line_naming_a_problem():
    body = event("care.contact", channel="fax")
    del body["listed"]
    reason = reason_for(body)
    assert "missing field 'listed'" in reason or "field 'channel'" in reason


# --- enums ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "name", "allowed"), ENUMS, ids=[f"{t}.{n}" for t, n, _ in ENUMS])
def test_wrong_enum_value_is_refused_naming_the_field_and_the_allowed_values(type_, name, allowed):
    reason = reason_for(event(type_, **{name: "telepathy"}))
    assert reason.startswith(f"field '{name}' must be one of")
    listed = re.findall(r"[a-z_]+", reason.split("must be one of", 1)[1])
    assert set(allowed) <= set(listed)
    assert "telepathy" not in reason


@pytest.mark.parametrize(("type_", "name", "allowed"), ENUMS, ids=[f"{t}.{n}" for t, n, _ in ENUMS])
def test_every_allowed_enum_value_is_accepted(type_, name, allowed):
    for value in allowed:
        assert getattr(validate_event(event(type_, **{name: value})), name) == value


def test_unknown_type_is_refused_listing_the_known_types():
    reason = reason_for(event("call.answered", type="call.teleport"))
    assert reason.startswith("unknown type 'call.teleport'")
    for type_ in ev.EVENT_TYPES:
        assert type_ in reason


@pytest.mark.parametrize("bad_type", ["Call.Answered", "call.answered ", "x" * 300, "", "call.Teleport99"])
def test_unknown_type_that_does_not_look_like_a_type_is_refused_without_being_echoed(bad_type):
    reason = reason_for(event("call.answered", type=bad_type))
    assert reason.startswith("unknown type;")
    assert f"'{bad_type}'" not in reason


@pytest.mark.parametrize("bad_type", [5, None, True, ["call.answered"], {"t": "call.answered"}])
def test_type_that_is_not_a_string_is_refused(bad_type):
    reason = reason_for(event("call.answered", type=bad_type))
    assert "'type'" in reason or reason.startswith("unknown type")


# --- time ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["2026-03-02T08:00:00", "2026-03-02T08:00:00.250"])
def test_at_without_offset_is_refused(at):
    reason = reason_for(event("call.answered", at=at))
    assert reason.startswith("field 'at'")
    assert "time needs an offset" in reason


@pytest.mark.parametrize("at", ["yesterday", "", "2026-13-02T08:00:00+01:00", "2026-03-02T25:00:00+01:00", "2026-03-02"])
def test_at_that_is_not_a_time_is_refused(at):
    reason = reason_for(event("call.answered", at=at))
    assert reason.startswith("field 'at'") and "RFC 3339" in reason
    assert "needs an offset" not in reason or at == "2026-03-02"


@pytest.mark.parametrize("at", [1772434800, 1772434800.5, None, True, ["2026-03-02T08:00:00+01:00"], {"t": 1}])
def test_at_that_is_not_a_string_is_refused(at):
    reason = reason_for(event("call.answered", at=at))
    assert reason.startswith("field 'at'") and "RFC 3339" in reason


def test_callback_slot_without_offset_is_refused():
    reason = reason_for(event("call.callback_booked", slot="2026-03-02T14:00:00"))
    assert reason.startswith("field 'slot'") and "time needs an offset" in reason


# --- unit (HSA-id) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    ["SE2321000016-VC01", "SE162321000016-VC01", "SE2321000016-A", "SE2321000016-" + "Z9" * 12, "SE2321000016-0"],
)
def test_unit_that_is_an_hsa_id_is_accepted(unit):
    assert validate_event(event("call.answered", unit=unit)).unit == unit


@pytest.mark.parametrize(
    "unit",
    [
        "SE23210000160-VC01",  # 11 digits
        "SE232100001-VC01",  # 9 digits
        "SE2321000016-" + "A" * 25,  # suffix longer than 24
        "SE2321000016-",  # no suffix
        "SE2321000016VC01",  # no dash
        "se2321000016-VC01",  # lower-case prefix
        "SE2321000016-VC-01",  # dash in the suffix
        "SE2321000016-VÅ01",  # non-ASCII letter
        "SE\u0662\u0663\u0662\u0661\u0660\u0660\u0660\u0660\u0661\u0666-VC01",  # Arabic-Indic digits
        "SE\uff12\uff13\uff12\uff11\uff10\uff10\uff10\uff10\uff11\uff16-VC01",  # full-width digits
        "SE2321000016-VC\uff10\uff11",  # full-width digits in the suffix
        " SE2321000016-VC01",
        "Vårdcentralen",
        "",
    ],
)
def test_unit_that_is_not_an_hsa_id_is_refused(unit):
    reason = reason_for(event("call.answered", unit=unit))
    assert reason.startswith("field 'unit' must be an HSA-id")


def test_a_device_id_seen_before_is_still_no_unit():
    """Units and devices that passed are remembered (they repeat on every event); a value remembered
    as a valid device must not pass as a unit afterwards."""
    assert validate_event(event("call.answered", device="pi-vc01-a")).device == "pi-vc01-a"
    assert reason_for(event("call.answered", unit="pi-vc01-a")).startswith("field 'unit' must be an HSA-id")


def test_a_remembered_unit_passes_again_and_a_bad_one_still_fails():
    good = "SE2321000016-VC99"
    for _ in range(3):
        assert validate_event(event("call.answered", unit=good)).unit == good
    assert reason_for(event("call.answered", unit=good + "\n")).startswith("field 'unit' must be an HSA-id")


def test_unit_that_is_not_a_string_is_refused():
    assert reason_for(event("call.answered", unit=2321000016)) == "field 'unit' must be a string"


# --- pseudonyms, event id, device ----------------------------------------------------------------


@pytest.mark.parametrize(("type_", "name"), PSEUDONYM_FIELDS)
@pytest.mark.parametrize("value", ["abcde", "a" * 65, "abc def", "abc.def", "abcdéf", "abc:def", "\nabcdef", "k\u0663\u0663\u0663\u0663\u0663"])
def test_bad_pseudonym_is_refused(type_, name, value):
    reason = reason_for(event(type_, **{name: value}))
    assert reason == f"field '{name}' must be a pseudonym: 6–64 characters of A–Z, a–z, 0–9, _ and -"


@pytest.mark.parametrize(("type_", "name"), PSEUDONYM_FIELDS)
@pytest.mark.parametrize("value", ["abcdef", "a" * 64, "A-b_9-Z", "k-0003"])
def test_pseudonym_of_6_to_64_allowed_characters_is_accepted(type_, name, value):
    assert getattr(validate_event(event(type_, **{name: value})), name) == value


def test_pseudonym_too_short_by_one_character_is_refused():
    assert reason_for(event("call.answered", call="abcde")).startswith("field 'call' must be a pseudonym")


def test_pseudonym_too_long_by_one_character_is_refused():
    assert reason_for(event("call.answered", call="a" * 65)).startswith("field 'call' must be a pseudonym")


@pytest.mark.parametrize("value", ["abcde", "a" * 65, "doc anna"])
def test_doctor_pseudonym_in_a_listing_row_follows_the_same_rule(value):
    reason = reason_for(event("listing.snapshot", doctors=[{"doctor": value, "listed": 1}]))
    assert reason == "field 'doctors[0].doctor' must be a pseudonym: 6–64 characters of A–Z, a–z, 0–9, _ and -"


@pytest.mark.parametrize("name", ["call", "id", "unit", "device"])
def test_trailing_newline_is_refused_in_every_patterned_field(name):
    good = {"call": "c-000001", "id": "ev-0001", "unit": UNIT, "device": "collector-1"}[name]
    for value in (good + "\n", good + "\r\n"):
        reason_for(event("call.answered", **{name: value}))


def test_fixed_doctor_may_be_null():
    assert validate_event(event("visit.completed", fixed_doctor=None)).fixed_doctor is None


def test_event_id_of_64_characters_is_accepted():
    assert validate_event(event("call.answered", id="a" * 64)).id == "a" * 64


@pytest.mark.parametrize("event_id", ["a" * 65, "", "ev 1", "ev/1", "évent", "ev#1"])
def test_event_id_of_65_characters_or_bad_characters_is_refused(event_id):
    assert reason_for(event("call.answered", id=event_id)) == "field 'id' must be 1–64 characters of A–Z, a–z, 0–9 and . _ : -"


@pytest.mark.parametrize("event_id", ["01J8ZK3Q4W5E6R7T8Y9U0I1O2P", "0190d5e1-8f3a-7b2c-9d4e-5f6a7b8c9d0e", "a.b_c:d-e"])
def test_event_id_like_a_ulid_or_uuid_is_accepted(event_id):
    assert validate_event(event("call.answered", id=event_id)).id == event_id


def test_bad_device_id_is_refused():
    reason = reason_for(event("call.answered", device="my device"))
    assert reason == "field 'device' must be 1–64 characters of A–Z, a–z, 0–9 and . _ -"
    assert reason_for(event("call.answered", device="d:1")).startswith("field 'device'")


def test_queue_longer_than_128_characters_is_refused():
    assert validate_event(event("call.offered", queue="q" * 128)).queue == "q" * 128
    assert reason_for(event("call.offered", queue="q" * 129)) == "field 'queue' is too long (at most 128 characters)"


# --- protocol version ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_protocol_version_other_than_1_is_refused(version):
    assert reason_for(event("call.answered", v=version)) == "unsupported protocol version: field 'v' must be 1"


@pytest.mark.parametrize("version", [True, 1.0])
def test_protocol_version_true_or_1_point_0_is_refused(version):
    assert reason_for(event("call.answered", v=version)) == "unsupported protocol version: field 'v' must be 1"


# --- strict types --------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "name"), BOOL_FIELDS)
@pytest.mark.parametrize("value", ["true", "false", 1, 0, None, "yes"])
def test_bool_field_refuses_anything_but_true_or_false(type_, name, value):
    assert reason_for(event(type_, **{name: value})) == f"field '{name}' must be true or false"


def test_listed_true_as_string_is_refused():
    assert reason_for(event("care.contact", listed="true")) == "field 'listed' must be true or false"


def test_listed_1_as_int_is_refused_for_a_bool_field():
    assert reason_for(event("care.contact", listed=1)) == "field 'listed' must be true or false"


@pytest.mark.parametrize("name", COUNT_FIELDS)
@pytest.mark.parametrize("value", ["8100", 8100.0, 8100.5, True, None])
def test_count_refuses_anything_but_a_whole_number(name, value):
    body = event("listing.snapshot", listed=9000, named_doctor=10)
    body[name] = value
    assert reason_for(body) == f"field '{name}' must be a whole number"


def test_count_8100_as_string_is_refused():
    assert reason_for(event("listing.snapshot", listed="8100")) == "field 'listed' must be a whole number"


@pytest.mark.parametrize("name", COUNT_FIELDS)
def test_negative_count_is_refused(name):
    body = event("listing.snapshot", listed=10, named_doctor=0)
    body[name] = -1
    assert reason_for(body) == f"field '{name}' must be 0 or more"


def test_negative_count_in_a_doctor_row_is_refused():
    rows = [{"doctor": "doc-anna", "listed": 5}, {"doctor": "doc-bert", "listed": -1}]
    assert reason_for(event("listing.snapshot", doctors=rows)) == "field 'doctors[1].listed' must be 0 or more"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"doctor": "doc-anna", "listed": "1"}, "field 'doctors[0].listed' must be a whole number"),
        ({"doctor": "doc-anna", "listed": 1, "active": 1}, "field 'doctors[0].active' must be true or false"),
        ({"doctor": "doc-anna", "listed": 1, "active": "false"}, "field 'doctors[0].active' must be true or false"),
        ({"doctor": "abcde", "listed": 1}, "field 'doctors[0].doctor' must be a pseudonym: 6–64 characters of A–Z, a–z, 0–9, _ and -"),
        ({"listed": 1}, "missing field 'doctors[0].doctor'"),
        (["doc-anna", 1], "field 'doctors[0]' must be an object"),
    ],
)
def test_doctor_row_with_a_bad_field_is_refused_naming_the_row(row, expected):
    assert reason_for(event("listing.snapshot", doctors=[row])) == expected


def test_doctors_that_is_not_a_list_is_refused():
    assert reason_for(event("listing.snapshot", doctors="doc-anna")).startswith("field 'doctors'")
    assert reason_for(event("listing.snapshot", doctors={"doctor": "doc-anna", "listed": 1})).startswith("field 'doctors'")


def test_queue_that_is_not_a_string_is_refused():
    assert reason_for(event("call.offered", queue=5)) == "field 'queue' must be a string"


def test_pseudonym_that_is_not_a_string_is_refused():
    assert reason_for(event("call.answered", call=123456)) == "field 'call' must be a string"


# --- model rules, defaults, unknown fields -------------------------------------------------------


def test_named_doctor_greater_than_listed_is_refused():
    reason = reason_for(event("listing.snapshot", listed=10, named_doctor=11))
    assert "named_doctor" in reason and "listed" in reason


def test_named_doctor_equal_to_listed_and_zero_are_accepted():
    assert validate_event(event("listing.snapshot", listed=10, named_doctor=10)).named_doctor == 10
    assert validate_event(event("listing.snapshot", listed=0, named_doctor=0)).listed == 0


def test_reached_defaults_to_true():
    assert validate_event(event("call.callback_done")).reached is True
    assert validate_event(event("call.callback_done", reached=False)).reached is False


def test_doctor_row_active_defaults_to_true():
    parsed = validate_event(event("listing.snapshot", doctors=[{"doctor": "doc-anna", "listed": 1}]))
    assert parsed.doctors[0].active is True


def test_optional_fields_default_to_none():
    assert validate_event(event("call.offered")).queue is None
    assert validate_event(event("call.callback_booked")).slot is None
    assert validate_event(event("care.contact")).patient is None
    visit = validate_event(event("visit.completed"))
    assert visit.fixed_doctor is None and visit.form is None
    assert validate_event(event("listing.snapshot")).doctors is None


def test_unknown_fields_are_ignored():
    body = event("call.answered", note="hej", extra={"a": [1, 2, {"b": None}]}, queue="x" * 500, listed="nonsense")
    parsed = validate_event(body)
    assert parsed == validate_event(event("call.answered"))
    assert not hasattr(parsed, "note") and not hasattr(parsed, "extra")


def test_events_are_immutable():
    parsed = validate_event(event("call.answered"))
    with pytest.raises((AttributeError, TypeError, ValueError)):
        parsed.call = "c-000002"
    assert parsed.call == "c-000001"


# --- not an object, not JSON, too big ------------------------------------------------------------


@pytest.mark.parametrize("obj", [[], [event("call.answered")], 5, 1.5, None, "call.answered", True])
def test_not_an_object_is_refused(obj):
    assert reason_for(obj) == "event must be an object"


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b"5", b"null", b'"x"', b"true"])
def test_json_that_is_not_an_object_is_refused(raw):
    assert line_reason(raw) == "event must be an object"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"   ", b'{"v": 1,}', b"{'v': 1}", b'{"v": 1 "id": 2}', b"\xff\xfe", b"NaN", b'{"v": 1'])
def test_invalid_json_is_refused_saying_so(raw):
    assert line_reason(raw).startswith("not valid JSON")


@pytest.mark.parametrize("tail", [b" x", b" {}", b"}", b"," + dumps(event("call.answered"))])
def test_valid_event_followed_by_more_text_is_refused_as_invalid_json(tail):
    assert line_reason(dumps(event("call.answered")) + tail).startswith("not valid JSON")


def test_line_of_exactly_max_event_bytes_is_parsed():
    body = dumps(event("call.answered"))
    padded = body + b" " * (MAX_EVENT_BYTES - len(body))
    assert len(padded) == MAX_EVENT_BYTES
    assert parse_event_line(padded).type == "call.answered"


def test_oversized_line_is_refused_without_parsing(monkeypatch):
    def explode(*_args, **_kwargs):
        raise AssertionError("an oversized line must not be parsed")

    monkeypatch.setattr(validation.orjson, "loads", explode)
    for name in ("EVENT_DECODER", "raw_may_contain_personal_number", "find_personal_number"):
        if hasattr(validation, name):
            monkeypatch.setattr(validation, name, explode)
    body = dumps(event("call.answered"))
    oversized = body + b" " * (MAX_EVENT_BYTES + 1 - len(body))
    assert line_reason(oversized) == f"event is larger than {MAX_EVENT_BYTES} bytes"
    assert line_reason(b"{" * (10 * MAX_EVENT_BYTES)) == f"event is larger than {MAX_EVENT_BYTES} bytes"


def test_parse_event_line_accepts_bytes_with_utf8_text():
    parsed = parse_event_line(dumps(event("call.offered", queue="rådgivning")))
    assert parsed.queue == "rådgivning"


# --- reasons are safe ----------------------------------------------------------------------------


def test_reason_does_not_repeat_the_offending_value():
    assert "Vårdcentralen" not in reason_for(event("call.answered", unit="Vårdcentralen"))
    assert "secret-value-xyz" not in reason_for(event("call.answered", id="secret-value-xyz/"))
    assert "hemlig" not in reason_for(event("call.answered", call="hemlig!"))
    assert "hemlig" not in reason_for(event("care.contact", channel="hemlig"))
    assert "hemlig" not in reason_for(event("call.answered", at="hemlig"))


def test_event_rejected_is_a_value_error_carrying_the_reason():
    with pytest.raises(ValueError) as caught:
        validate_event([])
    assert isinstance(caught.value, EventRejected)
    assert str(caught.value) == caught.value.reason == "event must be an object"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "v",
    "id",
    "type",
    "unit",
    "at",
    "device",
    "call",
    "queue",
    "slot",
    "reached",
    "reason",
    "case",
    "listed",
    "channel",
    "patient",
    "profession",
    "form",
    "named_doctor",
    "doctors",
    "practitioner",
    "fixed_doctor",
    "note",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    type_=st.sampled_from(ev.EVENT_TYPES),
    changes=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
    drop=st.lists(st.sampled_from(FIELDS), max_size=3),
)
def test_any_mutated_event_is_accepted_or_refused_with_a_one_line_reason(type_, changes, drop):
    body = event(type_, **changes)
    for name in drop:
        body.pop(name, None)
    for attempt in (lambda: validate_event(body), lambda: parse_event_line(json.dumps(body).encode())):
        try:
            attempt()
        except EventRejected as exc:
            assert_safe_reason(exc.reason)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_accepted_or_refused_with_a_one_line_reason(raw):
    try:
        parse_event_line(raw)
    except EventRejected as exc:
        assert_safe_reason(exc.reason)
