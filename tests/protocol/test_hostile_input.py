"""Hostile input at the protocol: Unicode variants of the test numbers are refused wherever they sit,
look-alikes that are not personal numbers pass, and random JSON is refused with a reason or accepted,
never an exception (issue 12, "What must be true").

Numbers: Skatteverket's test numbers only (tests/support/number_variants.py). The negative cases
build their look-alikes at run time from those digits.
"""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.number_variants import DIGIT_FORMS, ISSUE_FORMS, digit_form, format_characters, published_numbers, variants, written
from vardkoll.protocol.batches import BatchRejected, parse_batch
from vardkoll.protocol.heartbeat import StatusRefused, read_status
from vardkoll.protocol.personal_number import contains_personal_number, raw_may_contain_personal_number
from vardkoll.protocol.validation import EventRejected, parse_event_line, validate_event

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PN_REASON = "contains a personal identity number"
UNIT = "SE2321000016-VC01"


def offered(**extra: object) -> dict:
    return {"v": 1, "id": "ev-1", "type": "call.offered", "unit": UNIT, "at": "2026-03-02T08:00:00+01:00", "call": "c-abcdef"} | extra


def check_digit(nine: str) -> str:
    """Luhn over YYMMDDNNN, from Skatteverket's rule (not from the code under test)."""
    total = 0
    for index, char in enumerate(nine):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def assert_refused_everywhere(text: str) -> None:
    """The guard, the dict path and the raw path (UTF-8 and \\u-escaped) all refuse an event holding `text`."""
    assert contains_personal_number(text)
    for event in (offered(queue=text), offered(note={"rows": [text]}), offered(**{"free text": [1, text]})):
        with pytest.raises(EventRejected) as by_dict:
            validate_event(event)
        assert by_dict.value.reason.startswith(PN_REASON)
        for raw in (json.dumps(event, ensure_ascii=False).encode(), json.dumps(event).encode()):
            assert raw_may_contain_personal_number(raw)
            with pytest.raises(EventRejected) as by_raw:
                parse_event_line(raw)
            assert by_raw.value.reason == by_dict.value.reason


@pytest.mark.parametrize("text", ISSUE_FORMS)
def test_every_form_issue_12_found_stored_is_refused(text):
    assert_refused_everywhere(text)
    assert_refused_everywhere(f"ring {text} idag")


def test_every_script_with_decimal_digits_is_covered():
    # Arabic-Indic, Devanagari, Bengali, Thai, full-width, mathematical bold: each has all ten digits.
    for zero in ("\u0660", "\u0966", "\u09e6", "\u0e50", "\uff10", "\U0001d7ce"):
        assert all(chr(ord(zero) + d) in DIGIT_FORMS[str(d)] for d in range(10))
    number = "1212121212"
    for forms in zip(*(DIGIT_FORMS[d] for d in "0123456789")):  # script by script
        text = "".join(forms[int(d)] for d in number)
        assert contains_personal_number(text[:6] + "-" + text[6:]), [hex(ord(c)) for c in text]


@SETTINGS
@given(variants())
def test_a_unicode_variant_of_a_test_number_is_refused(text):
    assert_refused_everywhere(text)


@SETTINGS
@given(variants(), st.sampled_from(["queue", "device_note", "doctors"]))
def test_a_variant_in_a_batch_costs_only_its_own_event(text, field):
    good = offered(id="ev-good")
    bad = offered(id="ev-bad", **{field: [text] if field == "doctors" else text})
    _, items = parse_batch(orjson.dumps({"device": "dev-1", "events": [good, bad]}), 100)
    assert items[0].id == "ev-good"
    assert isinstance(items[1], EventRejected) and items[1].reason.startswith(PN_REASON)


# --- what is not a personal number passes ------------------------------------------------------------


@SETTINGS
@given(published_numbers(), st.data())
def test_a_candidate_inside_a_longer_digit_run_is_not_refused(number, data):
    text = data.draw(written(number))
    extra = data.draw(digit_form(data.draw(st.sampled_from("0123456789"))))
    glue = data.draw(st.one_of(st.just(""), format_characters))  # dropped before the scan: still one run
    longer = extra + glue + text if data.draw(st.booleans()) else text + glue + extra
    assert not contains_personal_number(longer)
    assert parse_event_line(json.dumps(offered(queue=longer), ensure_ascii=False).encode()).queue == longer


@SETTINGS
@given(published_numbers(), st.integers(1, 9), st.data())
def test_a_test_number_with_a_bad_check_digit_is_not_refused(number, shift, data):
    wrong = number[:-1] + str((int(number[-1]) + shift) % 10)
    text = data.draw(written(wrong))
    assert not contains_personal_number(text)
    assert validate_event(offered(queue=text)).queue == text


@SETTINGS
@given(st.sampled_from(["month 13", "month 00", "day 32", "Feb 30", "day 00"]), st.booleans(), st.data())
def test_an_invalid_date_with_a_right_check_digit_is_not_refused(kind, long_form, data):
    date_part = {"month 13": "121312", "month 00": "120012", "day 32": "121232", "Feb 30": "120230", "day 00": "121200"}[kind]
    nine = date_part + "121"
    digits = nine + check_digit(nine)
    text = data.draw(written("19" + digits if long_form else digits))
    assert not contains_personal_number(text)


@SETTINGS
@given(st.data())
def test_century_12_is_not_a_date_of_birth(data):
    text = data.draw(written("121212121212"))  # 12121212-1212: the test number's digits with century 12
    assert not contains_personal_number(text)
    assert validate_event(offered(queue=text)).queue == text


def test_ordinary_event_text_is_not_refused():
    for text in (
        "2026-03-02T08:00:00.123456+01:00",
        "2026-03-02 08:00",
        "070-123 45 67",
        "SE2321000016-VC01",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "kö 3 (Rådgivning)",
        "version 1.2.3",
        "٣ samtal",
    ):
        assert not contains_personal_number(text), text


# --- random JSON: a reason or an event, never an exception ----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
FIELDS = [
    "v",
    "id",
    "type",
    "unit",
    "at",
    "device",
    "call",
    "case",
    "queue",
    "reached",
    "listed",
    "named_doctor",
    "doctors",
    "channel",
    "profession",
    "form",
    "reason",
    "slot",
    "patient",
    "practitioner",
    "fixed_doctor",
]
TYPES = ["call.offered", "call.callback_done", "care.contact", "care.assessed", "listing.snapshot", "visit.completed", "nope"]
# Events close to valid ones with random JSON put into their fields: these reach past the first check.
near_events = st.builds(
    lambda base, kind, changes: base | {"type": kind} | changes,
    st.just(offered()),
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
)


def dumps(value: object) -> bytes | None:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: write it as JSON text anyway
        return None


def assert_judged(attempt) -> None:
    try:
        attempt()
    except (EventRejected, BatchRejected) as exc:
        assert exc.reason and "\n" not in exc.reason and "Traceback" not in exc.reason


@SETTINGS
@given(st.one_of(json_values, near_events))
def test_random_json_as_an_event_is_refused_with_a_reason_or_accepted(value):
    assert_judged(lambda: validate_event(value))
    raw = dumps(value) or json.dumps(value).encode()
    assert_judged(lambda: parse_event_line(raw))


@SETTINGS
@given(st.lists(st.one_of(json_values, near_events), max_size=6), st.one_of(st.just("dev-1"), json_values))
def test_random_json_in_a_batch_is_judged_event_by_event(events, device):
    for document in ({"device": device, "events": events}, events, device):
        raw = dumps(document) or json.dumps(document).encode()
        try:
            _, items = parse_batch(raw, 100)
        except BatchRejected as exc:
            assert exc.reason and "\n" not in exc.reason
        else:
            assert len(items) == len(events)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_as_an_event_or_a_batch_are_refused_with_a_reason(raw):
    assert_judged(lambda: parse_event_line(raw))
    assert_judged(lambda: parse_batch(raw, 100))


# --- the heartbeat ------------------------------------------------------------------------------------


def heartbeat(**extra: object) -> dict:
    return {
        "status": "online",
        "device": "pi-1",
        "version": "1.4.2",
        "uptime_s": 60,
        "at": "2026-11-23T14:05:00+01:00",
        "clock": {"ntp_synced": True, "state": "ok", "jumps": 0, "floor": "2026-11-23T14:00:00+01:00"},
        "outbox": {
            "held": 0,
            "depth": 3,
            "bytes": 900,
            "oldest_at": None,
            "added": 9,
            "dropped": 0,
            "refused": 0,
            "committed": 6,
            "rejected": 0,
            "drop_policy": "drop_oldest",
        },
        "publisher": {"in_flight_batches": 0, "batches_sent": 2, "resends": 0, "batches_refused": 0},
        "config": {"version": "2026-11-23.1", "state": "rolled_back", "rejected": {"version": "2026-11-23.2", "reason": "no broker"}},
    } | extra


def test_a_collectors_heartbeat_is_kept_whole():
    assert read_status(orjson.dumps(heartbeat())).heartbeat == heartbeat()


def test_unknown_fields_and_fields_that_break_their_rule_are_dropped():
    beat = heartbeat(
        phone="070-123 45 67",
        note="<script>alert(1)</script>",
        version="<script>",
        uptime_s=-1,
        clock={"ntp_synced": 1, "state": "ok", "jumps": True, "extra": "x"},
        outbox={"depth": 2**70, "oldest_at": "yesterday", "held": 1},
    )
    kept = read_status(json.dumps(beat).encode()).heartbeat
    assert kept is not None and set(kept) == {"status", "device", "at", "publisher", "config", "clock", "outbox"}
    assert kept["clock"] == {"state": "ok"} and kept["outbox"] == {"held": 1}
    assert "script" not in orjson.dumps(kept).decode() and "070" not in orjson.dumps(kept).decode()


@SETTINGS
@given(variants(), st.sampled_from(["phone", "config", "clock"]))
def test_a_heartbeat_holding_a_variant_anywhere_is_refused_whole(text, where):
    beat = heartbeat(
        **{
            "phone": {"phone": text},
            "config": {"config": {"state": "refused", "rejected": {"version": "2", "reason": text}}},
            "clock": {"clock": {"state": "implausible", "reason": f"ring {text}"}},
        }[where]
    )
    with pytest.raises(StatusRefused) as refused:
        read_status(json.dumps(beat, ensure_ascii=False).encode())
    assert refused.value.reason.startswith("status contains a personal identity number")


@SETTINGS
@given(st.one_of(json_values, st.builds(lambda extra: heartbeat() | extra, st.dictionaries(st.sampled_from(list(heartbeat())), json_values))))
def test_random_json_as_a_status_is_refused_with_a_reason_or_kept_in_bounds(value):
    raw = dumps(value) or json.dumps(value).encode()
    try:
        status = read_status(raw)
    except StatusRefused as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    kept = status.heartbeat
    if kept is not None:
        assert set(kept) <= set(heartbeat())
        assert all(not isinstance(v, float) or math.isfinite(v) for v in kept.values())
        assert len(orjson.dumps(kept)) <= len(raw) + 200  # nothing made up, times re-written at most
