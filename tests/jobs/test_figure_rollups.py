"""The rollup job (server/jobs/figure_rollups.py): past months and weeks stored for every process."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Callable

import orjson
import pytest
from sqlalchemy import func, select

from vardkoll.protocol import parse_event_line
from vardkoll.server.figures import service as figure_service
from vardkoll.server.ingest.service import Source
from vardkoll.server.jobs.figure_rollups import complete_months, complete_weeks, is_month_or_week, prune_ad_hoc, refresh_rollups
from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.services import Services
from vardkoll.server.storage.tables import StoredFigure

UNIT = "SE2321000016-VC31"


def test_complete_months_are_the_ones_before_this_month_newest_first():
    assert complete_months(date(2026, 3, 1), 3) == [
        Period(date(2026, 2, 1), date(2026, 2, 28)),
        Period(date(2026, 1, 1), date(2026, 1, 31)),
        Period(date(2025, 12, 1), date(2025, 12, 31)),
    ]
    assert complete_months(date(2024, 3, 31), 1) == [Period(date(2024, 2, 1), date(2024, 2, 29))]


def test_complete_weeks_run_monday_to_sunday_before_this_week():
    # Monday 23 November 2026 starts ISO week 48; the 25th is the Wednesday of that week.
    assert complete_weeks(date(2026, 11, 25), 2) == [
        Period(date(2026, 11, 16), date(2026, 11, 22)),
        Period(date(2026, 11, 9), date(2026, 11, 15)),
    ]
    assert complete_weeks(date(2026, 11, 23), 1) == [Period(date(2026, 11, 16), date(2026, 11, 22))]


def _offered(event_id: str, when: str, call: str):
    return parse_event_line(orjson.dumps({"v": 1, "id": event_id, "type": "call.offered", "unit": UNIT, "at": when, "call": call}))


def test_after_a_run_another_process_answers_past_months_from_the_store(make_services: Callable[[], Services], monkeypatch: pytest.MonkeyPatch):
    leader, other = make_services(), make_services()
    leader.ingest.ingest([_offered("ru-1", "2026-10-05T09:00:00+02:00", "call-ru1"), _offered("ru-2", "2026-11-02T09:00:00+01:00", "call-ru2")], Source("http"))
    now = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    assert refresh_rollups(leader, now, months=2, weeks=1) == 1 * len(METRICS) * 3
    with leader.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StoredFigure)) == len(METRICS) * 3

    loads: list[str] = []

    def counting(name: str, original):
        def wrapper(*args, **kwargs):
            loads.append(name)
            return original(*args, **kwargs)

        return wrapper

    for name in ("load_calls", "load_cases", "load_snapshots", "load_visits"):
        monkeypatch.setattr(figure_service, name, counting(name, getattr(figure_service, name)))
    october = other.figures.figure(UNIT, "telephone", Period(date(2026, 10, 1), date(2026, 10, 31)))
    assert (october["numerator"], october["denominator"]) == (0, 1)
    assert loads == [], "October came from the store"
    # This month is still running: never stored by the job, computed when asked, as a sum of the day
    # parts the job's run kept (server/figures/day_parts.py): no rows are loaded for it either.
    november = other.figures.figure(UNIT, "telephone", Period(date(2026, 11, 1), date(2026, 11, 30)))
    assert (november["numerator"], november["denominator"]) == (0, 1)
    assert loads == []
    assert november == {**other.figures.figure(UNIT, "telephone", Period(date(2026, 11, 1), date(2026, 11, 30)), cached=False), "data": november["data"]}


def test_months_and_iso_weeks_are_kept_other_periods_are_not():
    assert is_month_or_week(Period(date(2024, 2, 1), date(2024, 2, 29)))
    assert is_month_or_week(Period(date(2026, 11, 16), date(2026, 11, 22)))  # Monday to Sunday
    assert not is_month_or_week(Period(date(2024, 2, 1), date(2024, 2, 28)))
    assert not is_month_or_week(Period(date(2026, 3, 5), date(2026, 4, 17)))
    assert not is_month_or_week(Period(date(2026, 11, 17), date(2026, 11, 23)))  # Tuesday to Monday
    assert not is_month_or_week(Period(date(2026, 1, 1), date(2026, 2, 28)))  # two months


def test_stored_figures_of_ad_hoc_periods_are_pruned_after_thirty_days(make_services: Callable[[], Services]):
    services = make_services()
    services.ingest.ingest([_offered("pr-1", "2026-10-05T09:00:00+02:00", "call-pr1")], Source("http"))
    october, ad_hoc = Period(date(2026, 10, 1), date(2026, 10, 31)), Period(date(2026, 10, 3), date(2026, 10, 9))
    services.figures.figure(UNIT, "telephone", october)
    services.figures.figure(UNIT, "telephone", ad_hoc)
    stored = lambda: sorted((row.period_from, row.period_to) for row in _stored_rows(services))  # noqa: E731
    assert stored() == [(october.start, october.end), (ad_hoc.start, ad_hoc.end)]
    assert prune_ad_hoc(services, datetime.now(timezone.utc) + timedelta(days=29)) == 0
    assert prune_ad_hoc(services, datetime.now(timezone.utc) + timedelta(days=31)) == 1
    assert stored() == [(october.start, october.end)]


def _stored_rows(services: Services) -> list[StoredFigure]:
    with services.sessions() as session:
        return list(session.scalars(select(StoredFigure)))
