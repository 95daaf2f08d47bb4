"""The hourly call curve: the day's telephone figure split by local hour, DST days included."""

from __future__ import annotations

from datetime import date, datetime, time

from vardkoll.protocol import validate_event
from vardkoll.server.metrics import Period, UnitConfig, UnitState
from vardkoll.server.metrics.call_hours import calls_by_hour

UNIT = "SE2321000016-VC01"
FALL_BACK = date(2026, 10, 25)  # Stockholm: 03:00 summer time becomes 02:00 normal time, 25 hours
SPRING_FORWARD = date(2026, 3, 29)  # 02:00 normal time becomes 03:00 summer time, 23 hours


def state_of(events: list[dict], config: UnitConfig | None = None) -> UnitState:
    state = UnitState(UNIT, config or UnitConfig())
    for index, fields in enumerate(events):
        state.apply(validate_event({"v": 1, "id": f"h-{index}", "unit": UNIT, **fields}))
    return state


FALL_BACK_DAY = [
    {"type": "call.offered", "at": "2026-10-24T23:30:00+02:00", "call": "call-yesterday"},  # another day
    {"type": "call.offered", "at": "2026-10-25T02:30:00+02:00", "call": "call-first-two"},  # the first 02 hour
    {"type": "call.answered", "at": "2026-10-25T02:35:00+02:00", "call": "call-first-two"},
    {"type": "call.offered", "at": "2026-10-25T02:30:00+01:00", "call": "call-second-two"},  # the second 02 hour
    {"type": "call.callback_booked", "at": "2026-10-25T02:31:00+01:00", "call": "call-second-two"},
    {"type": "call.offered", "at": "2026-10-25T09:10:00+01:00", "call": "call-hung-up"},
    {"type": "call.abandoned", "at": "2026-10-25T09:12:00+01:00", "call": "call-hung-up"},
    {"type": "call.offered", "at": "2026-10-25T09:20:00+01:00", "call": "call-next-day"},
    {"type": "call.callback_done", "at": "2026-10-26T08:00:00+01:00", "call": "call-next-day"},
    {"type": "call.rejected", "at": "2026-10-25T09:15:00+01:00", "call": "call-full-queue", "reason": "queue_full"},
]


def test_a_fall_back_day_has_25_hours_and_the_two_two_oclock_hours_are_apart():
    state = state_of(FALL_BACK_DAY)
    as_of = datetime.fromisoformat("2026-10-25T23:59:59+01:00")
    hours = calls_by_hour(state.calls, FALL_BACK, as_of, state.config)
    assert len(hours) == 25
    assert [(h.start.hour, h.start.utcoffset().seconds // 3600) for h in hours[1:5]] == [(1, 2), (2, 2), (2, 1), (3, 1)]
    # Hour index: 00, 01, 02 (summer), 02 (normal), 03, … so 09:00 normal time is index 10.
    counted = {i: (h.offered, h.contact, h.pending, h.abandoned, h.other, h.rejected) for i, h in enumerate(hours) if h.offered or h.rejected}
    assert counted == {2: (1, 1, 0, 0, 0, 0), 3: (1, 0, 1, 0, 0, 0), 10: (2, 0, 0, 1, 1, 1)}


def test_the_hours_add_up_to_the_days_figure():
    state = state_of(FALL_BACK_DAY)
    figure = state.figure("telephone", Period(FALL_BACK, FALL_BACK))
    hours = calls_by_hour(state.calls, FALL_BACK, datetime.fromisoformat("2026-10-25T23:59:59.999999+01:00"), state.config)
    assert sum(h.offered for h in hours) == figure["denominator"] == 4
    assert sum(h.contact for h in hours) == figure["numerator"] == 1
    assert sum(h.pending for h in hours) == figure["details"]["callback_pending"] == 1
    assert sum(h.abandoned for h in hours) == figure["details"]["abandoned"] == 1
    assert sum(h.rejected for h in hours) == figure["details"]["rejected"] == 1


def test_a_spring_forward_day_has_23_hours_without_two_oclock():
    state = state_of([{"type": "call.offered", "at": "2026-03-29T03:30:00+02:00", "call": "call-after-the-jump"}])
    hours = calls_by_hour(state.calls, SPRING_FORWARD, datetime.fromisoformat("2026-03-29T23:00:00+02:00"), state.config)
    assert len(hours) == 23 and [h.start.hour for h in hours[:3]] == [0, 1, 3]
    assert hours[2].offered == 1


def test_only_what_is_known_at_the_moment_counts_and_later_hours_are_marked():
    state = state_of(FALL_BACK_DAY)
    as_of = datetime.fromisoformat("2026-10-25T09:11:00+01:00")  # after the 09:10 offer, before its hang-up
    hours = calls_by_hour(state.calls, FALL_BACK, as_of, state.config)
    assert (hours[10].offered, hours[10].abandoned, hours[10].other, hours[10].rejected) == (1, 0, 1, 0)
    assert hours[10].known and not hours[11].known


def test_calls_outside_opening_hours_are_left_out_as_in_the_figure():
    config = UnitConfig(opening_hours={6: ((time(8), time(17)),)})  # Sundays 08–17
    state = state_of(FALL_BACK_DAY, config)
    hours = calls_by_hour(state.calls, FALL_BACK, datetime.fromisoformat("2026-10-25T23:00:00+01:00"), config)
    assert sum(h.offered for h in hours) == state.figure("telephone", Period(FALL_BACK, FALL_BACK))["denominator"] == 2
    assert sum(h.rejected for h in hours) == 1  # rejections are counted whatever the hour, as in the figure
