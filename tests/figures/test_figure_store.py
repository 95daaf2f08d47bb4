"""Stored figures and per-day data versions (server/figures/store.py): a figure stays valid exactly
while no event up to its moment has changed, and every server process shares the stored ones.

The expected numbers are worked from tests/fixtures/cases/two-units.jsonl by the rules of SPEC 2.1:
on 4 May 2026 VC10 has three offered calls, two answered the same day (u10a, shared) and one
abandoned (u10b), so the telephone figure is 2 of 3.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Iterator

import pytest
from sqlalchemy import delete, func, select, update

from vardkoll.server.figures import store
from vardkoll.protocol import EVENT_CLASSES
from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.metrics.unit_state import EVENT_CLASSES_OF_METRIC
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import TargetRow, UnitRow
from vardkoll.server.storage.tables import CallRow, StoredFigure, UnitActivity, UnitDayVersion

from .test_figure_cache import DAY, HTTP, TWO_UNITS, VC02, VC10, LoadCounter, cached, event, fresh, items_of

MONTH = Period(date(2026, 5, 1), date(2026, 5, 31))
LATER_DAY = Period(date(2026, 5, 6), date(2026, 5, 6))


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def two_units(services: Services) -> Services:
    services.ingest.ingest(items_of(TWO_UNITS), HTTP)
    return services


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> LoadCounter:
    return LoadCounter(monkeypatch)


@pytest.fixture
def other_process(two_units: Services, database_url: str) -> Iterator[Services]:
    """A second server process on the same database: its own (empty) figure cache."""
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    yield opened
    opened.engine.dispose()


def offered(unit: str, call: str, when: str, event_id: str):
    return event(id=event_id, type="call.offered", unit=unit, at=when, call=call)


def stored_rows(services: Services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(StoredFigure))


# -- per-day versions ------------------------------------------------------------------------------------


def test_ingest_records_the_utc_dates_of_the_events_it_stored(two_units):
    # 01:00+02:00 on 4 May is 23:00 UTC on 3 May (the listing snapshot): two UTC dates for VC10.
    with two_units.sessions() as session:
        days = {(unit, day) for unit, day in session.execute(select(UnitDayVersion.unit, UnitDayVersion.day))}
    assert days == {(VC10, date(2026, 5, 3)), (VC10, date(2026, 5, 4)), (VC02, date(2026, 5, 4))}


def test_an_event_of_a_later_day_leaves_an_earlier_periods_figure_valid(two_units, loads):
    before = cached(two_units, VC10, "telephone", DAY)
    assert (before["numerator"], before["denominator"]) == (2, 3)
    computed = loads.calls
    two_units.ingest.ingest([offered(VC10, "call-later1", "2026-05-06T09:00:00+02:00", "st-001")], HTTP)
    after = cached(two_units, VC10, "telephone", DAY)
    assert after["data"]["last_event_at"] == "2026-05-06T07:00:00+00:00", "freshness is read anew"
    assert {**after, "data": None} == {**before, "data": None}
    assert loads.calls == computed, "the 4 May figure does not depend on an event of 6 May"
    assert cached(two_units, VC10, "telephone", LATER_DAY)["denominator"] == 1
    assert loads.calls == computed + 1


def test_a_late_event_of_the_period_makes_its_figure_stale(two_units, loads):
    assert cached(two_units, VC10, "telephone", DAY)["denominator"] == 3
    two_units.ingest.ingest([offered(VC10, "call-late01", "2026-05-04T16:00:00+02:00", "st-002")], HTTP)
    after = cached(two_units, VC10, "telephone", DAY)
    assert (after["numerator"], after["denominator"]) == (2, 4)
    assert after == fresh(two_units, VC10, "telephone", DAY)


def test_an_event_before_an_as_of_moment_makes_that_figure_stale(two_units):
    noon = datetime(2026, 5, 4, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    assert cached(two_units, VC10, "telephone", DAY, noon)["denominator"] == 3
    two_units.ingest.ingest([offered(VC10, "call-early1", "2026-05-04T08:30:00+02:00", "st-003")], HTTP)
    assert cached(two_units, VC10, "telephone", DAY, noon)["denominator"] == 4


def versions_through(services: Services, unit: str, through: date) -> dict[str | None, int]:
    with services.sessions() as session:
        return {metric: store.dependency_versions(session, [unit], through, metric)[unit] for metric in (*METRICS, None)}


def test_every_event_class_feeds_exactly_one_metric():
    """Ingest files each event under its metric's dependency version: a class in no ledger, or in two, would
    leave a figure valid that an event of it changed."""
    claimed = [kind for kinds in EVENT_CLASSES_OF_METRIC.values() for kind in kinds]
    assert sorted(claimed, key=str) == sorted(EVENT_CLASSES, key=str)
    assert set(EVENT_CLASSES_OF_METRIC) == set(METRICS)


def test_each_metric_depends_on_its_own_events_only(two_units):
    """VC10's one commit stored calls and an assessment of 4 May and a snapshot of 23:00 UTC on 3 May
    (01:00 in Stockholm); no visit. Each metric's version counts its own events' dates only."""
    assert versions_through(two_units, VC10, date(2026, 5, 3)) == {"telephone": 0, "assessment": 0, "fixed_doctor": 1, "continuity": 0, None: 1}
    assert versions_through(two_units, VC10, date(2026, 5, 4)) == {"telephone": 1, "assessment": 1, "fixed_doctor": 1, "continuity": 0, None: 1}
    two_units.ingest.ingest([offered(VC10, "call-late03", "2026-05-04T15:00:00+02:00", "st-005")], HTTP)
    assert versions_through(two_units, VC10, date(2026, 5, 4)) == {"telephone": 2, "assessment": 1, "fixed_doctor": 1, "continuity": 0, None: 2}


@pytest.mark.parametrize(
    ("late", "metric"),
    [
        ({"type": "call.offered", "call": "call-late04"}, "telephone"),
        ({"type": "care.contact", "case": "case-late1", "listed": True, "channel": "phone"}, "assessment"),
        ({"type": "visit.completed", "patient": "pat-late", "practitioner": "doc-anna", "profession": "doctor", "listed": True}, "continuity"),
        (
            {"type": "listing.snapshot", "listed": 31, "named_doctor": 31, "doctors": [{"doctor": "doc-anna", "listed": 31, "fte": 1.0}]},
            "fixed_doctor",
        ),
    ],
)
def test_a_late_event_makes_only_its_own_metrics_figure_stale(two_units, loads, late, metric):
    before = {m: cached(two_units, VC10, m, DAY) for m in METRICS}
    computed = loads.calls
    two_units.ingest.ingest([event(id="st-006", unit=VC10, at="2026-05-04T16:00:00+02:00", **late)], HTTP)
    after = {m: cached(two_units, VC10, m, DAY) for m in METRICS}
    assert loads.calls == computed + 1, f"only the {metric} figure is computed again"
    assert {m: {**f, "data": None} for m, f in after.items() if m != metric} == {m: {**f, "data": None} for m, f in before.items() if m != metric}
    assert after == {m: fresh(two_units, VC10, m, DAY) for m in METRICS}


def test_a_day_a_previous_release_wrote_counts_for_every_metric(two_units):
    """During a rolling upgrade a process of the release before the metric versions bumps `version` only,
    or inserts a row without them: every metric's figures over that day are then computed again, and a
    later commit of this release starts each metric from that version, never from an older one."""
    expected = {m: cached(two_units, VC02, m, MONTH) for m in METRICS}
    stale = two_units.figures.cache.stats.stale
    with two_units.sessions.begin() as session:  # what the old release's upsert does to VC02's row of 4 May
        session.execute(update(UnitDayVersion).where(UnitDayVersion.unit == VC02).values(version=UnitDayVersion.version + 4))
        session.execute(update(UnitActivity).where(UnitActivity.unit == VC02).values(version=5))
    assert {m: cached(two_units, VC02, m, MONTH) for m in METRICS} == expected
    assert two_units.figures.cache.stats.stale == stale + len(METRICS), "every metric's cached figure is out of date"
    assert versions_through(two_units, VC02, date(2026, 5, 4)) == {m: 5 for m in (*METRICS, None)}

    two_units.ingest.ingest([offered(VC02, "call-late05", "2026-05-04T15:00:00+02:00", "st-007")], HTTP)
    assert versions_through(two_units, VC02, date(2026, 5, 4)) == {"telephone": 6, "assessment": 5, "fixed_doctor": 5, "continuity": 5, None: 6}

    with two_units.sessions.begin() as session:  # a row the old release inserted: no metric versions at all
        session.add(UnitDayVersion(unit=VC02, day=date(2026, 5, 10), version=7))
    assert versions_through(two_units, VC02, date(2026, 5, 10)) == {m: 7 for m in (*METRICS, None)}


def test_the_versions_of_several_sets_are_read_in_one_query(services):
    """Rows written by hand; each expected version is the newest of its metric's column (or `version`, for
    the row without metric versions) over the unit's dates up to the set's date."""
    a, b = "SE2321000016-VA01", "SE2321000016-VB02"
    with services.sessions.begin() as session:
        for unit, day, version, exact, columns in [
            (a, date(2026, 5, 1), 1, True, {"telephone_version": 1}),
            (a, date(2026, 5, 2), 3, True, {"telephone_version": 2, "assessment_version": 3}),
            (a, date(2026, 6, 10), 5, True, {"continuity_version": 5}),
            (a, date(2026, 6, 11), 6, False, {}),  # a previous release's row: 6 for every metric
            (b, date(2026, 5, 31), 2, True, {"fixed_doctor_version": 2}),
            (b, date(2026, 7, 1), 4, True, {"telephone_version": 4}),
        ]:
            session.add(UnitDayVersion(unit=unit, day=day, version=version, metrics_version=version if exact else None, **columns))
    wanted = [
        ([a, b], date(2026, 5, 31), "telephone"),
        ([a], date(2026, 6, 10), "continuity"),
        ([a, b], date(2026, 6, 30), "assessment"),
        ([b], date(2026, 7, 1), "fixed_doctor"),
        ([a, b], date(2026, 7, 1), None),
        ([], date(2026, 5, 31), "telephone"),
        ([b, "SE2321000016-VC03"], date(2026, 5, 30), "telephone"),
    ]
    expected = [{a: 2, b: 0}, {a: 5}, {a: 6, b: 0}, {b: 2}, {a: 6, b: 4}, {}, {b: 0, "SE2321000016-VC03": 0}]
    with services.sessions() as session:
        assert store.dependency_versions_of_sets(session, wanted) == expected
        assert [store.dependency_versions(session, units, through, metric) if units else {} for units, through, metric in wanted] == expected


# -- the store shared by processes ------------------------------------------------------------------------


def test_another_process_reads_a_stored_figure_without_computing_it(two_units, other_process, loads):
    expected = {metric: cached(two_units, VC02, metric, MONTH) for metric in METRICS}
    assert stored_rows(two_units) == len(METRICS)
    computed = loads.calls
    assert {metric: cached(other_process, VC02, metric, MONTH) for metric in METRICS} == expected
    assert loads.calls == computed, "the other process found every figure in the store"


def test_a_stored_figure_is_what_the_rows_gave_when_it_was_stored(two_units, other_process):
    """Deleting rows behind the store's back (no version change) shows where an answer comes from."""
    assert cached(two_units, VC10, "telephone", DAY)["denominator"] == 3
    with two_units.sessions.begin() as session:
        session.execute(delete(CallRow).where(CallRow.unit == VC10, CallRow.call == "call-u10b"))
    assert cached(other_process, VC10, "telephone", DAY)["denominator"] == 3
    assert fresh(other_process, VC10, "telephone", DAY)["denominator"] == 2


def test_a_change_seen_by_one_process_makes_the_stored_figure_stale_for_all(two_units, other_process):
    assert cached(two_units, VC10, "telephone", DAY)["denominator"] == 3
    other_process.ingest.ingest([offered(VC10, "call-late02", "2026-05-04T15:00:00+02:00", "st-004")], HTTP)
    assert cached(two_units, VC10, "telephone", DAY)["denominator"] == 4
    assert cached(other_process, VC10, "telephone", DAY)["denominator"] == 4


def test_a_target_change_makes_the_stored_figure_stale(two_units, other_process):
    assert cached(two_units, VC02, "assessment", MONTH)["target"] == 0.9
    with other_process.sessions.begin() as session:
        session.add(TargetRow(unit=VC02, metric="assessment", target=0.95, valid_from=date(2026, 1, 1)))
    other_process.units.invalidate()
    assert cached(other_process, VC02, "assessment", MONTH)["target"] == 0.95


def test_an_opening_hours_change_makes_the_stored_figure_stale(two_units, other_process):
    with two_units.sessions.begin() as session:
        session.add(UnitRow(unit=VC10, name="Vårdcentralen Tio", region="Region Test"))
    two_units.units.invalidate()
    assert cached(two_units, VC10, "telephone", DAY)["denominator"] == 3
    with two_units.sessions.begin() as session:
        session.execute(update(UnitRow).where(UnitRow.unit == VC10).values(opening_hours='{"mon": [["10:00", "17:00"]]}'))
    other_process.units.invalidate()
    # Only the noon call (call-shared) is inside Monday 10:00-17:00.
    assert cached(other_process, VC10, "telephone", DAY)["denominator"] == 1


def test_a_new_definition_version_makes_stored_figures_stale(two_units, other_process, loads, monkeypatch):
    cached(two_units, VC02, "continuity", MONTH)
    computed = loads.calls
    monkeypatch.setattr(store, "DEFINITION_VERSIONS", {**store.DEFINITION_VERSIONS, "continuity": "test-next"})
    cached(other_process, VC02, "continuity", MONTH)
    assert loads.calls == computed + 1


def test_figures_at_a_given_moment_and_uncached_ones_are_never_stored(two_units):
    cached(two_units, VC02, "telephone", DAY, datetime(2026, 5, 4, 12, tzinfo=timezone.utc))
    fresh(two_units, VC02, "telephone", DAY)
    assert stored_rows(two_units) == 0


def test_a_period_that_has_not_ended_is_not_stored(two_units):
    """It changes with every event of today; storing it would only add a write to each live update."""
    today = datetime.now(timezone.utc).date()
    running = Period(date(2026, 5, 4), today + timedelta(days=2))
    assert cached(two_units, VC02, "telephone", running)["denominator"] == 1
    assert stored_rows(two_units) == 0
    cached(two_units, VC02, "telephone", DAY)
    assert stored_rows(two_units) == 1


def test_an_older_computation_never_replaces_a_newer_stored_figure(two_units):
    figure = {"numerator": 1}
    with two_units.sessions.begin() as session:
        store.save_stored(session, "telephone", DAY, [(VC02, "h", 5, figure)], datetime.now(timezone.utc))
        store.save_stored(session, "telephone", DAY, [(VC02, "h", 4, {"numerator": 2})], datetime.now(timezone.utc))
    with two_units.sessions() as session:
        assert store.load_stored(session, [VC02], "telephone", DAY) == {VC02: ("h", 5, figure)}
