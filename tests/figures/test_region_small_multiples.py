"""Regionvy's small multiples and whole year (one batch of all units per period) equal each unit's
figure computed from its rows, the replay reference; on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterator

import pytest

from tests.web.world import day_of_events
from vardkoll.protocol import validate_event
from vardkoll.server.figures import FigureService
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import METRICS
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow
from vardkoll.server.web.region_view import Filters, region_view
from vardkoll.server.web.trends import month_periods

REGION = "Region Små"
UNITS = ["SE2321000016-SM01", "SE2321000016-SM02", "SE2321000016-SM03"]  # the third has no events
DAYS = [date(2026, 1, 30), date(2026, 2, 2), date(2026, 3, 1), date(2026, 3, 2)]
TODAY = date(2026, 3, 2)  # the month and the year are running periods: summed from day parts


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    yield opened
    opened.engine.dispose()


def without_data(figure: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in figure.items() if key != "data"}


@pytest.mark.parametrize("metric", METRICS)
def test_each_small_chart_and_the_year_equal_the_figures_from_rows(services, metric):
    with services.sessions.begin() as session:
        session.add_all(UnitRow(unit=unit, name=f"Vårdcentral {unit[-2:]}", region=REGION) for unit in UNITS)
    services.units.invalidate()
    events = [validate_event(e) for unit, seed in zip(UNITS[:2], (0, 1)) for day in DAYS for e in day_of_events(unit, day, seed=seed, calls=6)]
    services.ingest.ingest(events, Source("http"))
    clock = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    services.figures = FigureService(services.sessions, services.units, FigureCache(), clock=lambda: clock)
    with services.sessions() as session:
        rows = sorted(session.query(UnitRow).filter(UnitRow.region == REGION), key=lambda r: r.unit)
        for row in rows:
            session.expunge(row)
    months = [p.period for p in month_periods(TODAY)]
    for round in range(3):  # computed; after two units' new calls today (kept sets, kept days); from the cache and the store
        if round == 1:
            new_calls = [
                {"v": 1, "id": f"new-{unit}", "type": "call.offered", "unit": unit, "call": f"call-new-{unit[-2:]}", "at": "2026-03-02T11:00:00+01:00"}
                for unit in (UNITS[0], UNITS[2])
            ]
            services.ingest.ingest([validate_event(e) for e in new_calls], Source("http"))
        view = region_view(services, rows, REGION, months[-1], "namn", False, Filters(metric=metric), TODAY)
        reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: clock)
        for row in view.rows:
            assert without_data(row.year) == without_data(reference.figure(row.unit.unit, metric, view.year, cached=False))
            for point, month in zip(row.months, months):
                expected = reference.figure(row.unit.unit, metric, month, cached=False)
                assert (point.share, point.numerator, point.denominator) == (expected["share"], expected["numerator"], expected["denominator"]), (
                    row.unit.unit,
                    month,
                )
    assert [r.unit.unit for r in view.rows] == UNITS
    if metric == "telephone":  # the unit whose first event is the new call: in today's month, not in the year (through yesterday)
        assert (view.rows[2].months[-1].denominator, view.rows[2].year["denominator"]) == (1, 0)
