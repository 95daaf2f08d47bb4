"""`check_event`'s common case (year, remembered unit and device, one regular expression over the id and
the pseudonyms) says exactly what checking each rule in order says: the same pass, the same first
broken rule. Generated events mix good and bad values in every field, near every boundary."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vardkoll.protocol import events as ev
from vardkoll.protocol import field_rules
from vardkoll.protocol.field_rules import EARLIEST_AT, LATEST_AT, check_event, is_plausible_at

SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
NEAR_A_BOUNDARY = st.sampled_from([EARLIEST_AT, LATEST_AT, datetime(2001, 1, 1, tzinfo=timezone.utc), datetime(2099, 1, 1, tzinfo=timezone.utc)])
TIMES = st.one_of(
    st.builds(lambda edge, shift_s, tz: (edge + timedelta(seconds=shift_s)).astimezone(tz), NEAR_A_BOUNDARY, st.integers(-3 * 86_400, 3 * 86_400), OFFSETS),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1), timezones=OFFSETS),
)

ID_CHARS = "abcXYZ019._:-"
PSEUDONYM_CHARS = "abcXYZ019_-"
ODD_CHARS = "\n \t.:/åé٣\x00"  # a newline, characters outside every rule, a non-ASCII digit
GOOD_ID = st.text(ID_CHARS, min_size=1, max_size=64)
GOOD_PSEUDONYM = st.text(PSEUDONYM_CHARS, min_size=6, max_size=64)
ANY_TEXT = st.text(PSEUDONYM_CHARS + ID_CHARS + ODD_CHARS, max_size=70)
IDS = st.one_of(GOOD_ID, ANY_TEXT, GOOD_ID.map(lambda value: value + "\n"), st.tuples(GOOD_ID, GOOD_ID).map("\n".join))
PSEUDONYMS = st.one_of(GOOD_PSEUDONYM, ANY_TEXT, GOOD_PSEUDONYM.map(lambda value: value + "\n"), st.tuples(GOOD_PSEUDONYM, GOOD_PSEUDONYM).map("\n".join))
UNITS = st.sampled_from(["SE2321000016-VC01", "SE232100001600-X", "SE2321000016-VC01\n", "SE23210000-VC01", "se2321000016-VC01", "SE2321000016-VC/1"])
DEVICES = st.one_of(st.none(), st.sampled_from(["pi-vc01-a", "c1", "pi vc01", "pi-vc01-a\n", ""]))


@st.composite
def events(draw: Any) -> SimpleNamespace:
    """An object with what the rules read, shaped like one of the event classes, any field good or bad."""
    cls = draw(st.sampled_from(ev.EVENT_CLASSES))
    fields = {name: draw(st.one_of(st.none(), PSEUDONYMS)) for name in cls.pseudonym_fields}
    return SimpleNamespace(
        id=draw(IDS),
        at=draw(TIMES),
        unit=draw(UNITS),
        device=draw(DEVICES),
        pseudonym_fields=cls.pseudonym_fields,
        id_and_pseudonyms=cls.id_and_pseudonyms,
        **fields,
    )


def outcome(check: Any, event: SimpleNamespace) -> str | None:
    try:
        check(event)
    except ValueError as exc:
        return str(exc)
    return None


@SETTINGS
@given(TIMES)
def test_a_plausible_time_is_judged_as_by_comparing_the_instants(at):
    assert is_plausible_at(at) == (EARLIEST_AT <= at < LATEST_AT)


@SETTINGS
@given(events())
def test_the_common_case_says_what_the_rules_in_order_say(event):
    # Run twice: the first call may remember the unit and device, so the second takes the common case.
    for _ in range(2):
        assert outcome(check_event, event) == outcome(field_rules._check_in_order, event)


def test_every_event_class_gets_its_id_and_pseudonyms_in_one_call():
    for cls in ev.EVENT_CLASSES:
        assert cls.id_and_pseudonyms(SimpleNamespace(id="i", **dict.fromkeys(cls.pseudonym_fields, "p"))) == ("i",) + ("p",) * len(cls.pseudonym_fields)
