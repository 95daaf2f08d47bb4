"""Figures summed from the day parts kept in the database (server/figures/day_parts.py) equal the pure
engine's figures for any event set, arrival order and batching, after late events that change days
whose parts are kept, and after a settings change; on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sqlalchemy_events
from sqlalchemy import func, select, update

from support.event_drafts import CALL_KINDS, CASE_KINDS, call_and_case_fields
from vardkoll.protocol import validate_event
from vardkoll.server.figures import FigureService
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.figures.loading import load_latest_snapshots
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import Period, UnitConfig, UnitState
from vardkoll.server.metrics.day_parts import PART_METRICS
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow
from vardkoll.server.storage.tables import FigureDayPart

HTTP = Source("http")
CALLS = [f"call-{i:02d}" for i in range(3)]  # few: late events often meet calls and cases kept already
CASES = [f"case-{i:02d}" for i in range(3)]
BASE = datetime(2026, 3, 26, 0, 0, tzinfo=timezone.utc)  # the spring DST change falls inside
OFFSETS = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))]
HOURS = [None, json.dumps({day: [["08:00", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")})]
PERIODS = [Period(date(2026, 3, 26), date(2026, 4, 4)), Period(date(2026, 3, 28), date(2026, 3, 30)), Period(date(2026, 3, 31), date(2026, 3, 31))]
MOMENTS = [None, datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc), datetime(2026, 4, 1, 7, 0, tzinfo=timezone.utc)]
_numbers = itertools.count()


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    yield opened
    opened.engine.dispose()


def running_service(services: Services) -> FigureService:
    """No in-memory cache, and a clock before every period: no figure is stored or cached, so every
    answer is summed from the day parts (computed, or kept from an earlier answer)."""
    return FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))


@st.composite
def drafts(draw):
    kind = draw(st.sampled_from([*CALL_KINDS, *CASE_KINDS]))
    at = (BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 9)))).astimezone(draw(st.sampled_from(OFFSETS)))
    return {"v": 1, "type": kind, "at": at.isoformat(), **call_and_case_fields(draw, kind, CALLS, CASES)}


def register(services: Services, unit: str, hours: str | None, unreached_counts: bool) -> None:
    with services.sessions.begin() as session:
        if session.get(UnitRow, unit) is None:
            session.add(UnitRow(unit=unit, name="Vårdcentral Del", region="Region Del", opening_hours=hours, unreached_callback_counts=unreached_counts))
        else:
            session.execute(update(UnitRow).where(UnitRow.unit == unit).values(opening_hours=hours, unreached_callback_counts=unreached_counts))
    services.units.invalidate()


def expected(services: Services, unit: str, events: list[Any], metric: str, period: Period, moment: datetime | None) -> dict[str, Any]:
    state = UnitState(unit, services.units.config(unit, period.end))
    for event in events:
        state.apply(event)
    return state.figure(metric, period, moment)


def answered(figures: FigureService, unit: str, metric: str, period: Period, moment: datetime | None) -> dict[str, Any]:
    figure = figures.figure(unit, metric, period, moment)
    return {key: value for key, value in figure.items() if key not in ("data", "definition_version")}


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    st.lists(drafts(), min_size=6, max_size=40),
    st.data(),
    st.sampled_from(HOURS),
    st.booleans(),
    st.sampled_from(HOURS),
    st.booleans(),
)
def test_figures_from_kept_day_parts_equal_the_engine(services, items, data, hours, unreached, later_hours, later_unreached):
    unit = f"SE2321000016-DP{next(_numbers):05d}"
    events = [validate_event({**draft, "unit": unit, "id": f"ev-{n:02d}"}) for n, draft in enumerate(items)]
    arrival = data.draw(st.permutations(events))
    cut = data.draw(st.integers(0, len(arrival)))
    first, late = arrival[:cut], arrival[cut:]
    register(services, unit, hours, unreached)
    figures = running_service(services)
    for batch in (first[: cut // 2], first[cut // 2 :]):
        services.ingest.ingest(batch, HTTP)
    for metric in PART_METRICS:  # keeps the parts of every day of the periods, as known from `first`
        for period in PERIODS:
            assert answered(figures, unit, metric, period, None) == expected(services, unit, first, metric, period, None)
    services.ingest.ingest(late, HTTP)
    if data.draw(st.booleans()):
        register(services, unit, later_hours, later_unreached)
    for metric in PART_METRICS:
        for period in PERIODS:
            for moment in MOMENTS:
                assert answered(figures, unit, metric, period, moment) == expected(services, unit, events, metric, period, moment), (metric, period, moment)


def test_a_late_event_marks_the_day_of_its_call_not_its_own(services):
    """Worked by hand: a call offered on 30 March, answered on 2 April (a later day, so no same-day
    contact). The answer's commit marks 30 March, where the call is anchored; 30 March's kept part is
    computed again and the period's figure says 0 of 1 with no outcome, then 0 of 1 answered later."""
    unit = "SE2321000016-DP99999"
    figures = running_service(services)
    offer = validate_event({"v": 1, "id": "ev-1", "type": "call.offered", "unit": unit, "call": "call-late1", "at": "2026-03-30T09:00:00+02:00"})
    services.ingest.ingest([offer], HTTP)
    march = Period(date(2026, 3, 1), date(2026, 4, 30))
    before = answered(figures, unit, "telephone", march, None)
    assert (before["numerator"], before["denominator"], before["details"]["answered"]) == (0, 1, 0)
    with services.sessions() as session:
        version_before = session.scalar(select(FigureDayPart.version).where(FigureDayPart.unit == unit, FigureDayPart.day == date(2026, 3, 30)))
    answer = validate_event({"v": 1, "id": "ev-2", "type": "call.answered", "unit": unit, "call": "call-late1", "at": "2026-04-02T10:00:00+02:00"})
    services.ingest.ingest([answer], HTTP)
    with services.sessions() as session:
        marked = dict(session.execute(select(FigureDayPart.day, FigureDayPart.version).where(FigureDayPart.unit == unit)).all())
        kept = session.scalar(select(func.count()).select_from(FigureDayPart).where(FigureDayPart.unit == unit, FigureDayPart.body.is_not(None)))
    assert set(marked) == {date(2026, 3, 30)} and marked[date(2026, 3, 30)] > version_before and kept == 1
    after = answered(figures, unit, "telephone", march, None)
    # Answered on another day than the offer: counted as offered without same-day contact, category none.
    assert (after["numerator"], after["denominator"]) == (0, 1)
    assert after == expected(services, unit, [offer, answer], "telephone", march, None)


PATIENTS = [f"pat-{i:03d}" for i in range(3)]
DOCTORS = ["doc-anna", "doc-bert", "doc-cari"]
VISIT_BASE = datetime(2024, 11, 1, tzinfo=timezone.utc)  # 18 months before the periods below, and some
VISIT_PERIODS = [Period(date(2026, 5, 1), date(2026, 5, 31)), Period(date(2026, 4, 30), date(2026, 5, 2)), Period(date(2026, 1, 1), date(2026, 6, 30))]
VISIT_MOMENTS = [None, datetime(2026, 5, 2, 9, 0, tzinfo=timezone.utc)]


@st.composite
def visits(draw):
    # Most visits in the last two months, the rest spread back past the start of the 18-month window.
    minutes = draw(st.one_of(st.integers(0, 60 * 24 * 610), st.integers(60 * 24 * 540, 60 * 24 * 610)))
    at = (VISIT_BASE + timedelta(minutes=minutes)).astimezone(draw(st.sampled_from(OFFSETS)))
    return {
        "v": 1,
        "type": "visit.completed",
        "at": at.isoformat(),
        "patient": draw(st.sampled_from(PATIENTS)),
        "practitioner": draw(st.sampled_from(DOCTORS)),
        "profession": draw(st.sampled_from(["doctor", "doctor", "nurse"])),
        "listed": draw(st.booleans()),
        "fixed_doctor": draw(st.sampled_from([None, *DOCTORS])),
    }


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(visits(), min_size=6, max_size=40))
def test_continuity_from_sql_sums_equals_the_engine(services, items):
    unit = f"SE2321000016-CV{next(_numbers):05d}"
    events = [validate_event({**draft, "unit": unit, "id": f"ev-{n:02d}"}) for n, draft in enumerate(items)]
    services.ingest.ingest(events, HTTP)
    figures = running_service(services)
    for period in VISIT_PERIODS:
        for moment in VISIT_MOMENTS:
            assert answered(figures, unit, "continuity", period, moment) == expected(services, unit, events, "continuity", period, moment)


def region_service(services: Services) -> FigureService:
    """The dashboards' path: figures and whole sets kept in memory, periods still running (nothing stored)."""
    return FigureService(services.sessions, services.units, FigureCache(), clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))


def answered_set(figures: FigureService, units: list[str], period: Period, moment: datetime | None) -> list[dict[str, Any]]:
    found = figures.figure_sets(units, [("continuity", period)], moment)[0]
    return [{key: value for key, value in figure.items() if key not in ("data", "definition_version")} for figure in found]


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(visits(), st.integers(0, 1)), min_size=6, max_size=40), st.data())
def test_continuity_after_late_visits_equals_the_engine(services, items, data):
    """Two units asked together, as Regionvy asks; some visits arrive after the figures were answered
    (and kept as a whole set): the next request equals the engine over every visit."""
    number = next(_numbers)
    units = [f"SE2321000016-CL{number:05d}", f"SE2321000016-CM{number:05d}"]
    events = [validate_event({**draft, "unit": units[which], "id": f"ev-{n:02d}"}) for n, (draft, which) in enumerate(items)]
    arrival = data.draw(st.permutations(events))
    cut = data.draw(st.integers(0, len(arrival)))
    first, late = arrival[:cut], arrival[cut:]
    figures = region_service(services)

    def of(unit: str, some: list[Any]) -> list[Any]:
        return [event for event in some if event.unit == unit]

    services.ingest.ingest(first, HTTP)
    for period in VISIT_PERIODS:
        assert answered_set(figures, units, period, None) == [expected(services, unit, of(unit, first), "continuity", period, None) for unit in units]
    services.ingest.ingest(late, HTTP)
    for period in VISIT_PERIODS:
        for moment in VISIT_MOMENTS:
            wanted = [expected(services, unit, of(unit, events), "continuity", period, moment) for unit in units]
            assert answered_set(figures, units, period, moment) == wanted, (period, moment)


def test_a_late_third_visit_makes_a_patient_eligible_on_the_next_request(services):
    """Worked by hand: pat-aaa meets doc-anna in March and April 2026, pat-bbb twice in May: nobody
    has 3 visits. A visit of pat-aaa on 2 May with doc-bert arrives late (after the May figure was
    answered): pat-aaa has 3 visits, index (2² + 1² − 3) / (3 · 2) = 1/3, the only eligible patient."""
    unit = "SE2321000016-CV99998"

    def visit(n: int, at: str, patient: str, doctor: str) -> Any:
        fields = {"patient": patient, "practitioner": doctor, "profession": "doctor", "listed": True, "fixed_doctor": "doc-anna"}
        return validate_event({"v": 1, "id": f"ev-{n}", "type": "visit.completed", "unit": unit, "at": at, **fields})

    may = Period(date(2026, 5, 1), date(2026, 5, 31))
    figures = region_service(services)
    services.ingest.ingest(
        [
            visit(1, "2026-03-10T10:00:00+01:00", "pat-aaa", "doc-anna"),
            visit(2, "2026-04-10T10:00:00+02:00", "pat-aaa", "doc-anna"),
            visit(3, "2026-05-04T10:00:00+02:00", "pat-bbb", "doc-anna"),
            visit(4, "2026-05-05T10:00:00+02:00", "pat-bbb", "doc-anna"),
        ],
        HTTP,
    )
    (before,) = answered_set(figures, [unit], may, None)
    assert before["details"] == {"coc_doctor_mean": None, "eligible_patients": 0, "small_n": True}
    services.ingest.ingest([visit(5, "2026-05-02T10:00:00+02:00", "pat-aaa", "doc-bert")], HTTP)
    (after,) = answered_set(figures, [unit], may, None)
    assert after["details"] == {"coc_doctor_mean": 0.3333, "eligible_patients": 1, "small_n": True}
    assert (after["numerator"], after["denominator"]) == (2, 3)


def test_continuity_as_known_at_a_moment_leaves_out_later_visits(services):
    """Worked by hand: pat-aaa meets doc-anna on 4, 5 and 6 May 2026 and doc-bert on 20 May. As known
    at 10 May her index is over 3 visits, all with doc-anna: (3² − 3) / (3 · 2) = 1; at the end of May
    over 4 visits: (3² + 1² − 4) / (4 · 3) = 1/2. pat-bbb's third visit (25 May) makes her eligible
    only at the end: 2 visits before 10 May are not enough."""
    unit = "SE2321000016-CV99997"
    rows = [
        ("2026-05-04", "pat-aaa", "doc-anna"),
        ("2026-05-05", "pat-aaa", "doc-anna"),
        ("2026-05-06", "pat-aaa", "doc-anna"),
        ("2026-05-20", "pat-aaa", "doc-bert"),
        ("2026-05-07", "pat-bbb", "doc-anna"),
        ("2026-05-08", "pat-bbb", "doc-anna"),
        ("2026-05-25", "pat-bbb", "doc-anna"),
    ]
    fields = {"profession": "doctor", "listed": True, "fixed_doctor": None}
    events = [
        validate_event(
            {
                "v": 1,
                "id": f"ev-{n}",
                "type": "visit.completed",
                "unit": unit,
                "at": f"{day}T10:00:00+02:00",
                "patient": patient,
                "practitioner": doctor,
                **fields,
            }
        )
        for n, (day, patient, doctor) in enumerate(rows)
    ]
    services.ingest.ingest(events, HTTP)
    may = Period(date(2026, 5, 1), date(2026, 5, 31))
    for figures in (running_service(services), region_service(services)):
        at_10_may = answered(figures, unit, "continuity", may, datetime(2026, 5, 10, 12, 0, tzinfo=timezone.utc))
        assert at_10_may["details"] == {"coc_doctor_mean": 1.0, "eligible_patients": 1, "small_n": True}
        at_end = answered(figures, unit, "continuity", may, None)
        # pat-aaa 1/2, pat-bbb (3 visits, all with doc-anna) 1: mean 3/4.
        assert at_end["details"] == {"coc_doctor_mean": 0.75, "eligible_patients": 2, "small_n": True}


def test_continuity_worked_example(services):
    """Worked by hand: patient A meets doc-anna twice and doc-bert once in May 2026 (3 visits: index
    (2² + 1² − 3) / (3 · 2) = 1/3), patient B meets doc-anna 3 times (index 1); mean 2/3 = 0.6667.
    Of the 6 visits, 4 are with a named fixed doctor (doc-anna), 3 of them with her."""
    unit = "SE2321000016-CV99999"
    rows = [
        ("pat-aaa", "doc-anna", "doc-anna"),
        ("pat-aaa", "doc-anna", None),
        ("pat-aaa", "doc-bert", "doc-anna"),
        ("pat-bbb", "doc-anna", "doc-anna"),
        ("pat-bbb", "doc-anna", "doc-anna"),
        ("pat-bbb", "doc-anna", None),
    ]
    events = [
        validate_event(
            {
                "v": 1,
                "id": f"ev-{n}",
                "type": "visit.completed",
                "unit": unit,
                "at": f"2026-05-{n + 4:02d}T10:00:00+02:00",
                "patient": patient,
                "practitioner": doctor,
                "profession": "doctor",
                "listed": True,
                "fixed_doctor": fixed,
            }
        )
        for n, (patient, doctor, fixed) in enumerate(rows)
    ]
    services.ingest.ingest(events, HTTP)
    figure = answered(running_service(services), unit, "continuity", Period(date(2026, 5, 1), date(2026, 5, 31)), None)
    assert (figure["numerator"], figure["denominator"]) == (3, 4)
    assert figure["details"] == {"coc_doctor_mean": 0.6667, "eligible_patients": 2, "small_n": True}


@st.composite
def snapshots(draw):
    at = (VISIT_BASE + timedelta(minutes=draw(st.integers(60 * 24 * 540, 60 * 24 * 610)))).astimezone(draw(st.sampled_from(OFFSETS)))
    listed = draw(st.integers(0, 50))
    return {
        "v": 1,
        "type": "listing.snapshot",
        "at": at.isoformat(),
        "listed": listed,
        "named_doctor": draw(st.integers(0, listed)),
        "doctors": [{"doctor": d, "listed": draw(st.integers(0, 30)), "active": draw(st.booleans())} for d in DOCTORS[: draw(st.integers(0, 3))]],
    }


def test_the_latest_snapshots_of_many_units_are_one_statement(services):
    """A region's changed units' fixed doctor figures cost one round trip, whatever the number of units."""
    at = BASE + timedelta(hours=10)
    units = [f"SE2321000016-FD{next(_numbers):05d}" for _ in range(3)]
    for unit in units[:2]:
        for n, listed in enumerate((100, 120)):
            draft = {"v": 1, "type": "listing.snapshot", "at": (at + timedelta(days=n)).isoformat(), "listed": listed, "named_doctor": 50, "doctors": []}
            services.ingest.ingest([validate_event({**draft, "unit": unit, "id": f"ev-{n:02d}"})], HTTP)
    statements: list[str] = []
    sqlalchemy_events.listen(services.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with services.sessions() as session:
        first_day = load_latest_snapshots(session, units, at + timedelta(hours=1))
        statements_of_first = len(statements)
        second_day = load_latest_snapshots(session, units, at + timedelta(days=1, hours=1))
    assert (statements_of_first, len(statements)) == (1, 2)
    both_days = Period(date(2026, 3, 26), date(2026, 3, 27))

    def listed(ledgers: dict[str, Any], cutoff: datetime) -> list[int]:
        return [ledgers[unit].figure(unit, both_days, cutoff, UnitConfig())["denominator"] for unit in units]

    assert listed(first_day, at + timedelta(hours=1)) == [100, 100, 0]  # the first snapshot: the second came after the cutoff
    assert listed(second_day, at + timedelta(days=1, hours=1)) == [120, 120, 0]


@settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.lists(snapshots(), min_size=0, max_size=6), min_size=1, max_size=4))
def test_fixed_doctor_for_many_units_at_once_equals_the_engine(services, per_unit):
    """The snapshots of several units are read in one query (`load_latest_snapshots`)."""
    units, sent = [], {}
    for drafts_of_unit in per_unit:
        unit = f"SE2321000016-FD{next(_numbers):05d}"
        units.append(unit)
        sent[unit] = [validate_event({**draft, "unit": unit, "id": f"ev-{n:02d}"}) for n, draft in enumerate(drafts_of_unit)]
        services.ingest.ingest(sent[unit], HTTP)
    figures = running_service(services)
    for period in VISIT_PERIODS:
        for moment in VISIT_MOMENTS:
            got = figures.figures(units, "fixed_doctor", period, moment)
            for unit, figure in zip(units, got):
                answer = {key: value for key, value in figure.items() if key not in ("data", "definition_version")}
                assert answer == expected(services, unit, sent[unit], "fixed_doctor", period, moment)
