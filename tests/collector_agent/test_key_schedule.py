"""The key schedule for call and case pseudonyms: one period per thing for its whole life (issue 16)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vardkoll.collector.key_schedule import PeriodBook, period_key, period_of

TZ = ZoneInfo("Europe/Stockholm")
SECRET = b"k" * 32


def _book() -> PeriodBook:
    return PeriodBook(sqlite3.connect(":memory:"), SECRET, TZ)


def test_a_case_opened_on_the_31st_keeps_its_period_when_assessed_on_the_2nd():
    book = _book()
    assert book.period_for("case", "ticket-17", datetime(2027, 1, 31, 16, tzinfo=TZ)) == "2027-01"
    assert book.period_for("case", "ticket-17", datetime(2027, 2, 2, 9, tzinfo=TZ)) == "2027-01"


def test_a_callback_read_before_its_offer_still_shares_one_period():
    book = _book()
    assert book.period_for("call", "q-1", datetime(2027, 3, 1, 8, tzinfo=TZ)) == "2027-03"
    assert book.period_for("call", "q-1", datetime(2027, 2, 28, 17, tzinfo=TZ)) == "2027-03"


def test_a_reused_source_id_after_its_life_is_a_new_thing_with_its_own_period():
    book = _book()
    assert book.period_for("case", "ticket-17", datetime(2027, 1, 5, tzinfo=TZ)) == "2027-01"
    assert book.period_for("case", "ticket-17", datetime(2027, 6, 5, tzinfo=TZ)) == "2027-06"
    assert book.period_for("case", "ticket-17", datetime(2027, 1, 7, tzinfo=TZ)) == "2027-01"


def test_the_period_is_the_local_month():
    assert period_of(datetime.fromisoformat("2027-01-31T23:30:00+00:00"), TZ) == "2027-02"


def test_patients_are_not_rotated():
    with pytest.raises(ValueError, match="not rotated"):
        _book().period_for("patient", "p", datetime(2027, 1, 1, tzinfo=TZ))


@given(st.lists(st.integers(min_value=0, max_value=60 * 24 * 20), min_size=1, max_size=8))
def test_every_event_of_one_thing_within_its_life_gets_the_first_seen_period(minutes):
    book = _book()
    start = datetime(2027, 1, 25, tzinfo=TZ)
    periods = {book.period_for("case", "c", start + timedelta(minutes=m)) for m in minutes}
    assert periods == {period_of(start + timedelta(minutes=minutes[0]), TZ)}


@given(st.sampled_from(["2027-01", "2027-02", "2028-01"]), st.sampled_from(["2027-03", "2026-12"]))
def test_period_keys_differ_between_periods_and_repeat_within_one(a, b):
    assert period_key(SECRET, a) == period_key(SECRET, a)
    assert period_key(SECRET, a) != period_key(SECRET, b)
