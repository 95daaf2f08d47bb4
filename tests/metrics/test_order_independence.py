"""Results depend only on the set of distinct events (SPEC 3.1): never on order, repeats or batching."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.event_drafts import CALL_KINDS, CASE_KINDS, call_and_case_fields
from vardkoll.protocol import validate_event
from vardkoll.server.metrics import MetricEngine, Period

UNITS = ("SE2321000016-VC01", "SE2321000016-VC02")
CALLS = [f"call-{i:02d}" for i in range(6)]
CASES = [f"case-{i:02d}" for i in range(6)]
PEOPLE = [f"pat-{i:03d}" for i in range(4)]
DOCTORS = ["doc-anna", "doc-bert", "doc-cari"]
# Around the spring DST change, with times written in UTC and in local offsets.
BASE = datetime(2026, 3, 27, 0, 0, tzinfo=timezone.utc)
OFFSETS = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))]
PERIODS = [Period(date(2026, 3, 27), date(2026, 3, 29)), Period(date(2026, 3, 28), date(2026, 3, 28)), Period(date(2026, 3, 30), date(2026, 4, 6))]
AS_OF = [None, datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc)]


@st.composite
def events(draw):
    kind = draw(st.sampled_from([*CALL_KINDS, *CASE_KINDS, "listing.snapshot", "visit.completed"]))
    at = (BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 8)))).astimezone(draw(st.sampled_from(OFFSETS)))
    event = {"v": 1, "type": kind, "unit": draw(st.sampled_from(UNITS)), "at": at.isoformat()}
    event.update(call_and_case_fields(draw, kind, CALLS, CASES))
    if kind == "listing.snapshot":
        listed = draw(st.integers(0, 50))
        event.update(
            listed=listed,
            named_doctor=draw(st.integers(0, listed)),
            doctors=[{"doctor": d, "listed": draw(st.integers(0, 30)), "active": draw(st.booleans())} for d in DOCTORS[: draw(st.integers(0, 3))]],
        )
    if kind == "visit.completed":
        event.update(
            patient=draw(st.sampled_from(PEOPLE)),
            practitioner=draw(st.sampled_from(DOCTORS)),
            profession=draw(st.sampled_from(["doctor", "doctor", "nurse"])),
            listed=draw(st.booleans()),
            fixed_doctor=draw(st.sampled_from([None, *DOCTORS])),
        )
    return event


@st.composite
def event_sets(draw):
    drafts = draw(st.lists(events(), min_size=1, max_size=40))
    return [validate_event({**draft, "id": f"ev-{index}"}) for index, draft in enumerate(drafts)]


def all_figures(batches):
    engine = MetricEngine()
    for batch in batches:
        engine.apply_all(batch)
    return [engine.figures(period, as_of) for period in PERIODS for as_of in AS_OF]


settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@given(event_sets(), st.randoms(use_true_random=False))
def test_shuffling_the_events_never_changes_a_figure(evs, rng):
    shuffled = list(evs)
    rng.shuffle(shuffled)
    assert all_figures([shuffled]) == all_figures([evs])


@given(event_sets(), st.data())
def test_repeating_any_events_never_changes_a_figure(evs, data):
    repeats = data.draw(st.lists(st.sampled_from(evs), max_size=20))
    positions = data.draw(st.lists(st.integers(0, len(evs)), min_size=len(repeats), max_size=len(repeats)))
    with_repeats = list(evs)
    for event, position in zip(repeats, positions):
        with_repeats.insert(position, event)
    assert all_figures([with_repeats]) == all_figures([evs])


@given(event_sets(), st.data())
def test_replaying_a_file_in_two_parts_into_one_state_gives_the_same_figures(evs, data):
    cut = data.draw(st.integers(0, len(evs)))
    assert all_figures([evs[cut:], evs[:cut]]) == all_figures([evs])
