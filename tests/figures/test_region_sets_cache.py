"""A region's figures kept as whole sets (server/figures/cache.py, "Whole sets"): a repeated Regionvy
page or region query comes from the cache, and anything that changes a figure (a late event for one
unit, a new target, a unit of the region with its first events) changes the answer on the very next
request, equal to the figures from the rows; on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone
from typing import Any, Iterator

import orjson
import pytest

from tests.web.world import day_of_events
from vardkoll.protocol import parse_event_line, validate_event
from vardkoll.server.figures import FigureService
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import TargetRow, UnitRow
from vardkoll.server.web.region_view import Filters, RegionView, region_view
from vardkoll.server.web.trends import month_periods

REGION = "Region Mängd"
UNITS = ["SE2321000016-MG01", "SE2321000016-MG02", "SE2321000016-MG03"]
DAYS = [date(2026, 2, 2), date(2026, 2, 27), date(2026, 3, 2)]
TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
FEBRUARY = Period(date(2026, 2, 1), date(2026, 2, 28))  # ended: kept in the store too
MARCH = Period(date(2026, 3, 1), TODAY)  # running


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    with opened.sessions.begin() as session:
        session.add_all(UnitRow(unit=unit, name=f"Vårdcentral {unit[-2:]}", region=REGION) for unit in UNITS)
    opened.units.invalidate()
    events = [validate_event(e) for unit, seed in zip(UNITS[:2], (0, 1)) for day in DAYS for e in day_of_events(unit, day, seed=seed, calls=6)]
    opened.ingest.ingest(events, Source("http"))
    opened.figures = FigureService(opened.sessions, opened.units, FigureCache(), clock=lambda: NOW)
    yield opened
    opened.engine.dispose()


def rows_of(services: Services) -> list[UnitRow]:
    with services.sessions() as session:
        rows = sorted(session.query(UnitRow).filter(UnitRow.region == REGION), key=lambda r: r.unit)
        for row in rows:
            session.expunge(row)
    return rows


def page(services: Services, period: Period = MARCH) -> RegionView:
    return region_view(services, rows_of(services), REGION, period, "namn", False, Filters(), TODAY)


def shown(view: RegionView) -> list[Any]:
    """Every number the page shows for each unit: the four figures, the year and the small multiples."""
    return [
        (
            row.unit.unit,
            {metric: without_data(figure) for metric, figure in row.figures.items()},
            without_data(row.year),
            [(p.share, p.numerator, p.denominator) for p in row.months],
        )
        for row in view.rows
    ]


def without_data(figure: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in figure.items() if key != "data"}


def from_rows(services: Services, view: RegionView) -> list[Any]:
    """What the page must show, every figure computed from the rows (the replay reference)."""
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    months = [p.period for p in month_periods(view.period.end)]
    return [
        (
            unit,
            {metric: without_data(reference.figure(unit, metric, view.period, cached=False)) for metric in METRICS},
            without_data(reference.figure(unit, "telephone", view.year, cached=False)),
            [(f["share"], f["numerator"], f["denominator"]) for f in (reference.figure(unit, "telephone", m, cached=False) for m in months)],
        )
        for unit in UNITS
    ]


def late_call(unit: str, event_id: str, at: datetime) -> list[Any]:
    """A call of February offered and answered, arriving now (an outbox drained after an outage)."""
    events = [
        {"v": 1, "id": f"{event_id}-o", "type": "call.offered", "unit": unit, "at": at.isoformat(), "call": f"late-{event_id}"},
        {"v": 1, "id": f"{event_id}-a", "type": "call.answered", "unit": unit, "at": at.replace(minute=5).isoformat(), "call": f"late-{event_id}"},
    ]
    return [parse_event_line(orjson.dumps(e)) for e in events]


def test_the_second_request_for_a_region_page_comes_whole_from_the_cache(services):
    first = page(services)
    hits = services.figures.cache.stats.set_hits
    second = page(services)
    # The table's four sets, 11 earlier months and the year: the chosen metric's running month is the table's set, asked once.
    assert services.figures.cache.stats.set_hits == hits + len(METRICS) + 12
    assert shown(second) == shown(first) == from_rows(services, first)


def test_a_set_asked_for_twice_is_answered_once_and_equal_in_both_places(services):
    figures = services.figures
    first, other, again = figures.figure_sets(UNITS, [("telephone", MARCH), ("assessment", MARCH), ("telephone", MARCH)])
    # Each unit's two figures looked up once and computed, none a third time from the cache.
    assert (figures.cache.stats.misses, figures.cache.stats.hits) == (len(UNITS) * 2, 0)
    assert again == first == figures.figures(UNITS, "telephone", MARCH)
    assert other == figures.figures(UNITS, "assessment", MARCH)


def test_a_late_event_changes_the_region_pages_figures_on_the_next_request(services):
    before = page(services)
    page(services)  # now from the whole-set cache
    unit = UNITS[1]
    services.ingest.ingest(late_call(unit, "late-feb", datetime(2026, 2, 10, 9, 0, tzinfo=timezone.utc)), Source("http"))
    after = page(services)
    assert shown(after) == from_rows(services, after)
    february = [row.months[-2] for row in after.rows]
    assert [p.denominator for p in february] == [
        before.rows[0].months[-2].denominator,
        before.rows[1].months[-2].denominator + 1,
        0,
    ]
    assert after.rows[1].year["denominator"] == before.rows[1].year["denominator"] + 1


def test_a_late_event_changes_the_region_query_on_the_next_request(services):
    figures = services.figures
    for period in (FEBRUARY, MARCH):
        figures.figures(UNITS, "telephone", period)
        figures.figures(UNITS, "telephone", period)  # from the whole-set cache
    services.ingest.ingest(late_call(UNITS[0], "late-mar", datetime(2026, 3, 2, 7, 0, tzinfo=timezone.utc)), Source("http"))
    services.ingest.ingest(late_call(UNITS[2], "late-feb", datetime(2026, 2, 27, 7, 0, tzinfo=timezone.utc)), Source("http"))
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    for period in (FEBRUARY, MARCH):
        answer = [without_data(f) for f in figures.figures(UNITS, "telephone", period)]
        assert answer == [without_data(reference.figure(unit, "telephone", period, cached=False)) for unit in UNITS]
    assert [f["data"]["no_data"] for f in figures.figures(UNITS, "telephone", FEBRUARY)] == [False, False, False]  # the third unit's first events


def test_a_new_target_changes_the_region_query_on_the_next_request(services):
    figures = services.figures
    first = figures.figures(UNITS, "telephone", FEBRUARY)
    figures.figures(UNITS, "telephone", FEBRUARY)
    with services.sessions.begin() as session:
        session.add(TargetRow(unit=UNITS[0], metric="telephone", target=0.01, valid_from=date(2026, 1, 1)))
    services.units.invalidate()  # as the API does after a change (other processes: within the directory's TTL)
    again = figures.figures(UNITS, "telephone", FEBRUARY)
    assert first[0]["target"] != 0.01 and again[0]["target"] == 0.01 and again[0]["meets_target"] is True
    assert [f["target"] for f in again[1:]] == [f["target"] for f in first[1:]]


def test_a_set_of_other_units_or_another_moment_is_its_own_entry(services):
    figures = services.figures
    moment = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    whole = figures.figures(UNITS, "telephone", MARCH)
    earlier = figures.figures(UNITS, "telephone", MARCH, as_of=moment)
    two = figures.figures(UNITS[1::-1], "telephone", MARCH)
    assert [f["unit"] for f in two] == UNITS[1::-1]
    assert [without_data(f) for f in two] == [without_data(f) for f in whole[1::-1]]
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    assert [without_data(f) for f in earlier] == [without_data(reference.figure(u, "telephone", MARCH, as_of=moment, cached=False)) for u in UNITS]


def test_a_caller_changing_an_answer_does_not_change_the_cached_set(services):
    figures = services.figures
    figures.figures(UNITS, "assessment", MARCH)
    answer = figures.figures(UNITS, "assessment", MARCH)
    expected = orjson.loads(orjson.dumps(answer))
    answer[0]["numerator"] = -1
    answer[1]["data"] = None
    with pytest.raises(TypeError, match="read-only"):
        answer[0]["details"]["pending"] = -1  # the kept set's nested values are shared: refused
    with pytest.raises(TypeError, match="read-only"):
        answer[0]["details"]["by_profession"].clear()
    assert figures.figures(UNITS, "assessment", MARCH) == expected


@pytest.mark.parametrize(
    "contact, moment, overdue",
    [
        ("2026-03-26T23:59:59.999999+01:00", "2026-03-29T23:59:59.999999+02:00", False),  # day 3 ends: still pending (DST in between)
        ("2026-03-26T23:59:59.999999+01:00", "2026-03-30T00:00:00+02:00", True),  # day 4 begins: overdue
        ("2026-03-27T00:00:00+01:00", "2026-03-30T00:00:00+02:00", False),
        ("2026-10-22T08:00:00+02:00", "2026-10-25T23:00:00+01:00", False),  # a 25-hour day 3
        ("2026-10-22T08:00:00+02:00", "2026-10-25T23:00:00Z", True),  # 00:00 on day 4 in Stockholm
    ],
)
def test_open_cases_counted_by_the_database_are_overdue_exactly_when_the_rules_say(database_url, contact, moment, overdue):
    from vardkoll.server.figures.day_parts import open_case_counts, open_case_ledgers

    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    try:
        unit = UNITS[0]
        with opened.sessions.begin() as session:
            session.add(UnitRow(unit=unit, name="Vårdcentral Gräns", region=REGION))
        opened.units.invalidate()
        event = {"v": 1, "id": "c-1", "type": "care.contact", "unit": unit, "at": contact, "case": "case-edge-1", "listed": True, "channel": "phone"}
        opened.ingest.ingest([parse_event_line(orjson.dumps(event))], Source("http"))
        at = datetime.fromisoformat(moment)
        config = opened.units.config(unit)
        with opened.sessions() as session:
            counted = open_case_counts(session, [unit], at, config.tz)
            by_rules = open_case_ledgers(session, [unit], at, {unit: config})[unit]._open_at(at, config)
        assert counted[unit] == by_rules == ((0, 1) if overdue else (1, 0))
    finally:
        opened.engine.dispose()


def test_after_one_units_event_only_that_unit_is_answered_again(services, monkeypatch):
    figures = services.figures
    first = figures.figures(UNITS, "telephone", MARCH)
    asked: list[list[str]] = []
    answer_units = figures._figures

    def recording(session, plan, *rest):
        asked.append(list(plan.units))
        return answer_units(session, plan, *rest)

    monkeypatch.setattr(figures, "_figures", recording)
    services.ingest.ingest(late_call(UNITS[1], "now-mar", datetime(2026, 3, 2, 11, 0, tzinfo=timezone.utc)), Source("http"))
    again = figures.figures(UNITS, "telephone", MARCH)
    assert asked == [[UNITS[1]]]
    assert again[1]["denominator"] == first[1]["denominator"] + 1
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    assert [without_data(f) for f in again] == [without_data(reference.figure(u, "telephone", MARCH, cached=False)) for u in UNITS]
    with services.sessions.begin() as session:
        session.add(TargetRow(unit=UNITS[2], metric="telephone", target=0.5, valid_from=date(2026, 1, 1)))
    services.units.invalidate()
    figures.figures(UNITS, "telephone", MARCH)
    assert asked[-1] == UNITS  # a settings change: every unit of the set again (each may still come from its own cache entry)


def test_kept_sets_are_the_same_objects_until_a_units_data_moves(services):
    # What Regionvy's kept rows rely on (server/web/region_rows.py): an unchanged unit's figure is the
    # object it was, a changed unit's is a new one, and the values are those of `figure_sets`.
    figures = services.figures
    wanted = [("telephone", MARCH), ("telephone", FEBRUARY)]
    first = figures.kept_figure_sets(UNITS, wanted)
    again = figures.kept_figure_sets(UNITS, wanted)
    assert all(a is b for one, other in zip(first.sets, again.sets) for a, b in zip(one, other))
    assert [a is b for a, b in zip(first.blocks, again.blocks)] == [True] * len(UNITS)
    services.ingest.ingest(late_call(UNITS[1], "now-mar", datetime(2026, 3, 2, 11, 0, tzinfo=timezone.utc)), Source("http"))
    after = figures.kept_figure_sets(UNITS, wanted)
    assert [[a is b for a, b in zip(one, other)] for one, other in zip(first.sets, after.sets)] == [[True, False, True]] * 2
    assert after.blocks[1] is not first.blocks[1] and after.blocks[0] is first.blocks[0]
    assert after.sets[0][1]["denominator"] == first.sets[0][1]["denominator"] + 1
    copies = figures.figure_sets(UNITS, wanted)
    assert [[without_data(f) for f in one] for one in copies] == [list(one) for one in after.sets]
    assert [f["data"] for f in copies[0]] == after.blocks
    with pytest.raises(TypeError):
        after.sets[0][0]["details"]["answered"] = 0  # shared by every caller: read-only


def test_continuity_is_answered_beside_the_other_sets_and_in_the_callers_order(services, monkeypatch):
    from vardkoll.server.figures import service as figure_service

    threads: list[str] = []
    compute_continuity = figure_service.continuity_figures

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return compute_continuity(*args, **kwargs)

    monkeypatch.setattr(figure_service, "continuity_figures", recording)
    wanted = [("continuity", FEBRUARY), ("telephone", MARCH), ("continuity", MARCH), ("assessment", MARCH)]
    answers = services.figures.figure_sets(UNITS, wanted)
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    for (metric, period), answer in zip(wanted, answers):
        assert [without_data(f) for f in answer] == [without_data(reference.figure(u, metric, period, cached=False)) for u in UNITS]
    assert any(f["denominator"] for f in answers[0] + answers[2])  # the world has doctor visits: the test compares something
    assert len(threads) == 2 and all(name.startswith("figures-beside") for name in threads)


def test_a_failure_beside_reaches_the_caller(services, monkeypatch):
    from vardkoll.server.figures import service as figure_service

    def failing(*args, **kwargs):
        raise RuntimeError("continuity failed")

    monkeypatch.setattr(figure_service, "continuity_figures", failing)
    with pytest.raises(RuntimeError, match="continuity failed"):
        services.figures.figure_sets(UNITS, [("telephone", MARCH), ("continuity", MARCH)])


def test_after_calls_continuity_is_answered_from_memory_in_the_callers_session(services, monkeypatch):
    """A live update while calls arrive: the unit's continuity figure is still valid (calls do not feed it),
    so no second session is opened for it; the telephone figure is computed again, and both equal the rows."""
    figures = services.figures
    wanted = [("telephone", MARCH), ("continuity", MARCH), ("assessment", MARCH)]
    figures.figure_sets(UNITS, wanted)
    answered: list[tuple[str, list[str], str]] = []
    answer_units = figures._figures

    def recording(session, plan, *rest):
        answered.append((plan.metric, list(plan.units), threading.current_thread().name))
        return answer_units(session, plan, *rest)

    monkeypatch.setattr(figures, "_figures", recording)
    services.ingest.ingest(late_call(UNITS[0], "now-mar2", datetime(2026, 3, 2, 11, 30, tzinfo=timezone.utc)), Source("http"))
    answers = figures.figure_sets(UNITS, wanted)
    here = threading.current_thread().name
    assert answered == [(metric, [UNITS[0]], here) for metric, _ in wanted]
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    for (metric, period), answer in zip(wanted, answers):
        assert [without_data(f) for f in answer] == [without_data(reference.figure(u, metric, period, cached=False)) for u in UNITS]
    assert answers[0][0]["denominator"] > 0


def _record_threads(figures: FigureService, monkeypatch) -> list[tuple[str, str]]:
    """Each set's metric and the thread that answered it."""
    answered: list[tuple[str, str]] = []
    answer_units = figures._figures

    def recording(session, plan, *rest):
        answered.append((plan.metric, threading.current_thread().name))
        return answer_units(session, plan, *rest)

    monkeypatch.setattr(figures, "_figures", recording)
    return answered


def assert_equal_to_the_rows(services: Services, wanted: list[tuple[str, Period]], answers: list[list[dict[str, Any]]]) -> None:
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    for (metric, period), answer in zip(wanted, answers):
        assert [without_data(f) for f in answer] == [without_data(reference.figure(u, metric, period, cached=False)) for u in UNITS]


def test_sets_no_thread_beside_has_taken_are_answered_in_the_callers_thread(services, monkeypatch):
    """The threads beside serve every request of the process: when they are all busy, a request does not
    wait for them but answers its own sets (and still equals the rows)."""
    from concurrent.futures import ThreadPoolExecutor

    from vardkoll.server.figures import service as figure_service

    figures = services.figures
    wanted = [(metric, MARCH) for metric in METRICS]
    busy = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    busy.submit(release.wait, 60)
    submitted: list[str] = []
    submit = busy.submit

    def recording_submit(task, *args):
        submitted.append(task.__name__)
        return submit(task, *args)

    monkeypatch.setattr(busy, "submit", recording_submit)
    monkeypatch.setattr(figure_service, "_BESIDE", busy)
    answered = _record_threads(figures, monkeypatch)
    started = time.monotonic()
    try:
        cold = figures.figure_sets(UNITS, wanted)  # continuity's sets from the start beside the others, when a thread is free
        assert_equal_to_the_rows(services, wanted, cold)
        events = [validate_event(e) for e in day_of_events(UNITS[2], TODAY, seed=5, calls=6)]
        assert not services.ingest.ingest(events, Source("http")).rejected
        answers = figures.figure_sets(UNITS, wanted)  # the changed unit's continuity beside the others, when a thread is free
    finally:
        release.set()
        busy.shutdown()
    assert time.monotonic() - started < 30, "a request waited for the busy threads"
    assert submitted == ["_answer_sets", "_figures_in_own_session"]  # the cold page's continuity, then the changed unit's
    here = threading.current_thread().name
    assert sorted(metric for metric, _ in answered) == sorted(METRICS * 2)
    assert all(thread == here for _, thread in answered)
    assert_equal_to_the_rows(services, wanted, answers)
