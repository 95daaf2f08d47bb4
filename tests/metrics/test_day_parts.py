"""The telephone and assessment figures are sums of per-day parts (server/metrics/day_parts.py): for any
event set, period and moment, the parts (as known now where that is what the moment knew, counted again
at the moment where not) and the open cases at the moment give exactly the engine's figure."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from support.event_drafts import CALL_KINDS, CASE_KINDS, call_and_case_fields
from vardkoll.protocol import validate_event
from vardkoll.server.metrics import Period, UnitConfig, UnitState, end_of_day
from vardkoll.server.metrics.day_parts import FOREVER, PART_METRICS, day_part, figure_from_parts, summed

UNIT = "SE2321000016-VC01"
CALLS = [f"call-{i:02d}" for i in range(8)]
CASES = [f"case-{i:02d}" for i in range(8)]
BASE = datetime(2026, 3, 26, 0, 0, tzinfo=timezone.utc)  # the spring DST change falls inside
OFFSETS = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))]
CONFIGS = [
    UnitConfig(),
    UnitConfig(opening_hours={d: ((time(8), time(12)), (time(13), time(17))) for d in range(5)}, unreached_callback_counts=False),
    UnitConfig(time_zone="UTC", targets={"telephone": 0.5, "assessment": 0.75}),
]


@st.composite
def event_sets(draw):
    drafts = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from([*CALL_KINDS, *CASE_KINDS]))
        at = (BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 9)))).astimezone(draw(st.sampled_from(OFFSETS)))
        drafts.append({"v": 1, "type": kind, "unit": UNIT, "at": at.isoformat(), **call_and_case_fields(draw, kind, CALLS, CASES)})
    return [validate_event({**draft, "id": f"ev-{index:02d}"}) for index, draft in enumerate(drafts)]


def days(period: Period) -> list[date]:
    return [period.start + timedelta(days=n) for n in range((period.end - period.start).days + 1)]


def from_parts(state: UnitState, metric: str, period: Period, moment: datetime) -> dict:
    ledger = state.calls if metric == "telephone" else state.cases
    parts = []
    for day in days(period):
        part = day_part(metric, ledger, day, FOREVER, state.config)
        parts.append(part if part.known_at(moment) else day_part(metric, ledger, day, moment, state.config))
    open_cases = state.cases._open_at(moment, state.config) if metric == "assessment" else (0, 0)
    return figure_from_parts(metric, UNIT, period, summed(metric, parts), state.config, open_cases)


@settings(deadline=None, max_examples=150)
@given(event_sets(), st.sampled_from(CONFIGS), st.integers(0, 9), st.integers(0, 9), st.sampled_from([None, 0, 1, 30, 60 * 30]))
def test_a_figure_is_the_sum_of_its_day_parts(events, config, first, length, as_of_minutes):
    state = UnitState(UNIT, config)
    for event in events:
        state.apply(event)
    period = Period(date(2026, 3, 26) + timedelta(days=first), date(2026, 3, 26) + timedelta(days=first + length))
    moment = end_of_day(period.end, config.tz) if as_of_minutes is None else BASE + timedelta(minutes=as_of_minutes * 7)
    for metric in PART_METRICS:
        assert from_parts(state, metric, period, moment) == state.figure(metric, period, moment)


@settings(deadline=None, max_examples=150)
@given(event_sets(), st.sampled_from(CONFIGS), st.integers(0, 9), st.integers(0, 60 * 24 * 12))
def test_a_part_known_at_a_moment_is_the_part_as_known_now(events, config, offset, minutes):
    state = UnitState(UNIT, config)
    for event in events:
        state.apply(event)
    day, moment = date(2026, 3, 26) + timedelta(days=offset), BASE + timedelta(minutes=minutes)
    for metric in PART_METRICS:
        ledger = state.calls if metric == "telephone" else state.cases
        now = day_part(metric, ledger, day, FOREVER, config)
        if now.known_at(moment):
            assert day_part(metric, ledger, day, moment, config).counts == now.counts


def test_worked_example_a_callback_after_the_period_makes_the_last_day_count_again():
    """Two calls offered on 30 March: one answered that day, one with a callback booked that day and
    made on 31 March. For the period ending 30 March (as known at its end) the second is pending; as
    known now it is a later callback, so the day's part is not what the period's end knew."""
    raw = [
        ("call.offered", "call-c1", "2026-03-30T09:00:00+02:00", {}),
        ("call.answered", "call-c1", "2026-03-30T09:01:00+02:00", {}),
        ("call.offered", "call-c2", "2026-03-30T10:00:00+02:00", {}),
        ("call.callback_booked", "call-c2", "2026-03-30T10:01:00+02:00", {}),
        ("call.callback_done", "call-c2", "2026-03-31T08:00:00+02:00", {"reached": True}),
    ]
    events = [
        validate_event({"v": 1, "id": f"ev-{n}", "type": kind, "unit": UNIT, "call": call, "at": at, **extra}) for n, (kind, call, at, extra) in enumerate(raw)
    ]
    state = UnitState(UNIT)
    for event in events:
        state.apply(event)
    period = Period(date(2026, 3, 30), date(2026, 3, 30))
    part = day_part("telephone", state.calls, date(2026, 3, 30), FOREVER, state.config)
    assert (part.counts["same_day"], part.counts["offered"], part.counts["callback_later"], part.counts["callback_pending"]) == (1, 2, 1, 0)
    assert not part.known_at(end_of_day(period.end, state.config.tz))
    figure = from_parts(state, "telephone", period, end_of_day(period.end, state.config.tz))
    assert (figure["numerator"], figure["denominator"], figure["details"]["callback_pending"], figure["details"]["callback_later"]) == (1, 2, 1, 0)
