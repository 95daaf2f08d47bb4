"""What one reader counted is reused by the next reader of the same version, and never once the version
is newer: a running day's part (one call offered, then a second), continuity's 18-month sums and the
open cases of today and the running month (the same moment), all worked by hand."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from vardkoll.protocol import validate_event
from vardkoll.server.figures import FigureService
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import Period
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings

UNIT = "SE2321000016-RP001"
TODAY = Period(date(2026, 3, 10), date(2026, 3, 10))
MONTH = Period(date(2026, 3, 1), date(2026, 3, 10))
HTTP = Source(transport="http")


def call(n: int, at: str) -> dict:
    return validate_event({"v": 1, "id": f"ev-{n}", "type": "call.offered", "unit": UNIT, "call": f"call-{n}", "at": at})


def at_15_on_10_march() -> datetime:
    return datetime(2026, 3, 10, 15, tzinfo=timezone.utc)


@pytest.fixture
def services(database_url):
    services = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    yield services
    services.engine.dispose()


def counted_calls(monkeypatch, module, name: str) -> list[tuple]:
    """The calls of `module.name` from now on (their arguments), each still made."""
    calls: list[tuple] = []
    original = getattr(module, name)

    def counting(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(module, name, counting)
    return calls


def assert_equal_to_the_rows(figures: FigureService, services, metric: str) -> None:
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=at_15_on_10_march)
    for period in (TODAY, MONTH):
        answer = {k: v for k, v in figures.figure(UNIT, metric, period).items() if k != "data"}
        assert answer == {k: v for k, v in reference.figure(UNIT, metric, period, cached=False).items() if k != "data"}


def test_the_next_reader_of_the_same_day_version_reuses_the_part_and_a_newer_version_is_counted(services):
    # No figure cache and a clock inside the day: every answer is summed from the day parts.
    figures = FigureService(services.sessions, services.units, FigureCache(0), clock=at_15_on_10_march)
    kept = figures.kept_ledgers
    assert kept is not None
    services.ingest.ingest([call(1, "2026-03-10T09:00:00+01:00")], HTTP)
    assert figures.figure(UNIT, "telephone", TODAY)["denominator"] == 1  # the day's part computed (and written)
    services.ingest.ingest([call(2, "2026-03-10T10:00:00+01:00")], HTTP)
    assert figures.figure(UNIT, "telephone", TODAY)["denominator"] == 2  # stale in the database: counted again
    reads = dict(kept.reads)
    # The month needs the same day at the same version: its part is the one just counted (the running
    # day is written at most every five minutes, so the database's part is still the first call's).
    assert figures.figure(UNIT, "telephone", MONTH)["denominator"] == 2
    assert kept.reads == reads, "the part was reused: the day's rows were not read again"
    services.ingest.ingest([call(3, "2026-03-10T11:00:00+01:00")], HTTP)
    assert figures.figure(UNIT, "telephone", MONTH)["denominator"] == 3
    assert sum(kept.reads.values()) == sum(reads.values()) + 1, "a newer version of the day: counted from its rows again"
    assert_equal_to_the_rows(figures, services, "telephone")


def visit(n: int, at: str, practitioner: str) -> dict:
    return validate_event(
        {
            "v": 1,
            "id": f"visit-{n}",
            "type": "visit.completed",
            "unit": UNIT,
            "at": at,
            "patient": "patient-1",
            "practitioner": practitioner,
            "profession": "doctor",
            "listed": True,
        }
    )


def test_continuitys_sums_counted_for_today_serve_the_running_month_until_a_visit_moves_the_version(services, monkeypatch):
    from vardkoll.server.figures import continuity_sums

    counted = counted_calls(monkeypatch, continuity_sums, "_patient_sums")
    figures = FigureService(services.sessions, services.units, FigureCache(0), clock=at_15_on_10_march)
    # One patient: doctors A, A, B. By hand: n = 3, s = 2² + 1² = 5, index (s - n) / (n(n - 1)) = 2/6.
    services.ingest.ingest(
        [
            visit(1, "2026-03-02T09:00:00+01:00", "doctor-a"),
            visit(2, "2026-03-05T09:00:00+01:00", "doctor-a"),
            visit(3, "2026-03-10T09:00:00+01:00", "doctor-b"),
        ],
        HTTP,
    )
    # Bulk work (the rollup job, reports) keeps nothing in memory, so it pushes out nothing.
    assert figures.figures([UNIT], "continuity", TODAY, keep_in_memory=False)[0]["details"]["coc_doctor_mean"] == 0.3333
    assert figures.figure(UNIT, "continuity", TODAY)["details"]["coc_doctor_mean"] == 0.3333  # the live figure of today
    assert len(counted) == 2, "the bulk answer's sums were not kept"
    month = figures.figure(UNIT, "continuity", MONTH)
    assert (month["details"]["coc_doctor_mean"], month["details"]["eligible_patients"]) == (0.3333, 1)
    assert len(counted) == 2, "the same window and moment at the same version: the sums were reused"
    # A fourth visit, to A: n = 4, s = 3² + 1² = 10, index (10 - 4) / 12 = 1/2.
    services.ingest.ingest([visit(4, "2026-03-10T11:00:00+01:00", "doctor-a")], HTTP)
    assert figures.figure(UNIT, "continuity", MONTH)["details"]["coc_doctor_mean"] == 0.5
    assert len(counted) == 3, "a newer version: counted again"
    # A period ending another day has another window and moment: the visits of the 10th are not in it.
    earlier = figures.figure(UNIT, "continuity", Period(date(2026, 3, 1), date(2026, 3, 9)))
    assert (earlier["details"]["coc_doctor_mean"], earlier["details"]["eligible_patients"]) == (None, 0)
    assert len(counted) == 4
    assert_equal_to_the_rows(figures, services, "continuity")


def case_event(n: int, kind: str, case: str, at: str, **fields) -> dict:
    return validate_event({"v": 1, "id": f"case-event-{n}", "type": kind, "unit": UNIT, "case": case, "at": at, **fields})


def test_open_cases_counted_for_today_serve_the_running_month_until_a_case_event_moves_the_version(services, monkeypatch):
    from vardkoll.server.figures import day_parts

    counted = counted_calls(monkeypatch, day_parts, "open_case_counts")
    figures = FigureService(services.sessions, services.units, FigureCache(0), clock=at_15_on_10_march)
    contact = {"listed": True, "channel": "phone"}
    # At the end of 10 March: the case of the 5th is past its 3 days (overdue), the case of the 9th is not (pending).
    services.ingest.ingest(
        [
            case_event(1, "care.contact", "case-early", "2026-03-05T09:00:00+01:00", **contact),
            case_event(2, "care.contact", "case-late", "2026-03-09T09:00:00+01:00", **contact),
        ],
        HTTP,
    )
    today = figures.figure(UNIT, "assessment", TODAY)["details"]
    assert (today["pending"], today["overdue_open"], len(counted)) == (1, 1, 1)
    month = figures.figure(UNIT, "assessment", MONTH)["details"]
    assert (month["pending"], month["overdue_open"]) == (1, 1)
    assert len(counted) == 1, "the same moment at the same version: the open cases were reused"
    services.ingest.ingest([case_event(3, "care.assessed", "case-late", "2026-03-10T10:00:00+01:00", profession="nurse", form="phone")], HTTP)
    month = figures.figure(UNIT, "assessment", MONTH)["details"]
    assert (month["pending"], month["overdue_open"], len(counted)) == (0, 1, 2), "a newer version: counted again"
    assert_equal_to_the_rows(figures, services, "assessment")


def test_open_cases_kept_for_one_time_zone_are_not_taken_for_another(services):
    from vardkoll.server.figures import day_parts
    from vardkoll.server.figures.recent_parts import RecentParts
    from vardkoll.server.metrics import UnitConfig

    services.ingest.ingest([case_event(1, "care.contact", "case-1", "2026-03-07T12:00:00+00:00", listed=True, channel="phone")], HTTP)
    moment = datetime(2026, 3, 10, 23, 30, tzinfo=timezone.utc)
    recent = RecentParts()
    # By hand: in Stockholm the moment is on 11 March, past the contact day + 3 (overdue); in UTC on the
    # 10th, not yet (pending). A time zone changed in the settings moves no version.
    with services.sessions() as session:
        stockholm = day_parts._open_cases(session, [(UNIT, moment)], {UNIT: UnitConfig(time_zone="Europe/Stockholm")}, {UNIT: 1}, recent)
        utc = day_parts._open_cases(session, [(UNIT, moment)], {UNIT: UnitConfig(time_zone="UTC")}, {UNIT: 1}, recent)
    assert (stockholm[(UNIT, moment)], utc[(UNIT, moment)]) == ((0, 1), (1, 0))
