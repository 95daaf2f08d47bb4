"""Rules the scenario files cannot reach: region policy, opening hours, calendar and rounding edges."""

from __future__ import annotations

from datetime import date, time
from fractions import Fraction

import pytest

from vardkoll.protocol import validate_event
from vardkoll.server.metrics import Applied, Period, UnitConfig, UnitState
from vardkoll.server.metrics.calendar import end_of_day, months_earlier, zone
from vardkoll.server.metrics.figures import make_figure, round_half_up

UNIT = "SE2321000016-VC01"
MONDAY = Period(date(2026, 3, 2), date(2026, 3, 2))


def event(index: int, kind: str, at: str, **fields) -> object:
    return validate_event({"v": 1, "id": f"r-{index}", "type": kind, "unit": UNIT, "at": at, **fields})


def telephone(config: UnitConfig, events: list) -> dict:
    state = UnitState(UNIT, config)
    for e in events:
        state.apply(e)
    return state.figure("telephone", MONDAY)


UNREACHED = [
    event(1, "call.offered", "2026-03-02T09:00:00+01:00", call="call-unreached"),
    event(2, "call.callback_booked", "2026-03-02T09:01:00+01:00", call="call-unreached"),
    event(3, "call.callback_done", "2026-03-02T13:00:00+01:00", call="call-unreached", reached=False),
]


def test_unreached_callback_counts_as_contact_by_default():
    figure = telephone(UnitConfig(), UNREACHED)
    assert (figure["numerator"], figure["denominator"], figure["details"]["callback_same_day"]) == (1, 1, 1)


def test_region_policy_can_refuse_unreached_callbacks_as_contact():
    figure = telephone(UnitConfig(unreached_callback_counts=False), UNREACHED)
    assert (figure["numerator"], figure["denominator"]) == (0, 1)
    # The callback was made, so it is no longer pending; it fits no category.
    assert figure["details"]["callback_pending"] == 0 and figure["details"]["callback_same_day"] == 0


def test_region_policy_counts_a_later_reached_callback_the_same_day():
    events = [*UNREACHED, event(4, "call.callback_done", "2026-03-02T15:00:00+01:00", call="call-unreached", reached=True)]
    figure = telephone(UnitConfig(unreached_callback_counts=False), events)
    assert (figure["numerator"], figure["details"]["callback_same_day"]) == (1, 1)


def test_with_opening_hours_only_offers_inside_them_count():
    hours = UnitConfig(opening_hours={0: ((time(8), time(12)), (time(13), time(17)))})
    events = [
        event(1, "call.offered", "2026-03-02T07:59:59+01:00", call="call-early"),
        event(2, "call.offered", "2026-03-02T08:00:00+01:00", call="call-opening"),
        event(3, "call.offered", "2026-03-02T12:30:00+01:00", call="call-lunch"),
        event(4, "call.offered", "2026-03-02T15:59:00Z", call="call-late-utc"),  # 16:59 local: open
        event(5, "call.answered", "2026-03-02T08:05:00+01:00", call="call-opening"),
    ]
    figure = telephone(hours, events)
    assert (figure["numerator"], figure["denominator"]) == (1, 2)
    assert telephone(UnitConfig(), events)["denominator"] == 4


def test_same_id_with_other_content_is_a_conflict_not_a_duplicate():
    state = UnitState(UNIT)
    first = event(1, "call.offered", "2026-03-02T09:00:00+01:00", call="call-one")
    assert state.apply(first) is Applied.COUNTED
    assert state.apply(first) is Applied.DUPLICATE
    assert state.apply(event(1, "call.offered", "2026-03-02T09:00:00+01:00", call="call-two")) is Applied.CONFLICT
    assert state.figure("telephone", MONDAY)["denominator"] == 1


def test_an_event_resent_by_another_device_is_a_duplicate():
    state = UnitState(UNIT)
    state.apply(event(1, "call.offered", "2026-03-02T09:00:00+01:00", call="call-one", device="pi-old"))
    assert state.apply(event(1, "call.offered", "2026-03-02T09:00:00+01:00", call="call-one", device="pi-new")) is Applied.DUPLICATE


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 8, 31), date(2025, 2, 28)),
        (date(2026, 3, 31), date(2024, 9, 30)),
        (date(2025, 8, 29), date(2024, 2, 29)),
        (date(2026, 6, 15), date(2024, 12, 15)),
    ],
)
def test_eighteen_months_earlier_is_clamped_to_the_end_of_a_shorter_month(day, expected):
    assert months_earlier(day, 18) == expected


def test_dst_days_end_at_the_next_local_midnight():
    stockholm = zone("Europe/Stockholm")
    assert end_of_day(date(2026, 3, 29), stockholm).isoformat() == "2026-03-29T23:59:59.999999+02:00"
    assert end_of_day(date(2026, 10, 25), stockholm).isoformat() == "2026-10-25T23:59:59.999999+01:00"


def test_shares_round_half_up_like_a_person_would():
    assert round_half_up(Fraction(1, 32)) == 0.0313
    assert round_half_up(Fraction(2, 3)) == 0.6667
    assert round_half_up(Fraction(1620, 1), 2) == 1620.0


def test_meets_target_judges_the_exact_ratio_not_the_rounded_share():
    figure = make_figure(UNIT, "telephone", date(2026, 3, 1), date(2026, 3, 1), 89999, 100000, 0.9, {})
    assert figure["share"] == 0.9 and figure["meets_target"] is False
    assert make_figure(UNIT, "telephone", date(2026, 3, 1), date(2026, 3, 1), 9, 10, 0.9, {})["meets_target"] is True


def test_fewer_than_twenty_cases_are_flagged_small():
    assert make_figure(UNIT, "telephone", date(2026, 3, 1), date(2026, 3, 1), 19, 19, 0.9, {})["details"]["small_n"] is True
    assert make_figure(UNIT, "telephone", date(2026, 3, 1), date(2026, 3, 1), 20, 20, 0.9, {})["details"]["small_n"] is False
