"""`FigureService.series` (one load for many periods) gives exactly the figures asked one by one."""

from __future__ import annotations

from datetime import date, timedelta

import orjson
import pytest

from vardkoll.protocol import parse_event_line
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow
from vardkoll.server.web.trends import month_periods, week_periods
from vardkoll.simulation import generate

START = date(2026, 1, 5)
DAYS = 100  # across the DST change of 29 March


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    services = build_services(ServerSettings(database_url=f"sqlite:///{tmp_path_factory.mktemp('series') / 's.db'}"), apply_migrations=True)
    events = list(generate(seed=3, units=1, days=DAYS, start_date=START))
    units = sorted({e["unit"] for e in events})
    with services.sessions.begin() as session:
        for unit in units:
            session.add(UnitRow(unit=unit, name=unit, region="R"))
    services.units.invalidate()
    services.ingest.ingest([parse_event_line(orjson.dumps(e)) for e in events], Source("http"))
    yield services, units
    services.engine.dispose()


@pytest.mark.parametrize("metric", METRICS)
def test_a_series_equals_the_figures_asked_one_by_one(stored, metric):
    services, units = stored
    services.figures.cache = FigureCache(0)  # compute everything, in both ways
    last = START + timedelta(days=DAYS - 10)  # some open cases and pending callbacks after it
    periods = [p.period for p in week_periods(last) + month_periods(last)] + [Period(date(2026, 1, 1), last)]
    for unit in units:
        one_by_one = [services.figures.figure(unit, metric, period, cached=False) for period in periods]
        assert services.figures.series(unit, metric, periods) == one_by_one
        assert any(f["denominator"] for f in one_by_one)  # a test over real numbers, not only zeros


def test_a_series_fills_and_reads_the_same_cache_as_single_figures(stored):
    services, units = stored
    services.figures.cache = FigureCache()
    week = Period(date(2026, 3, 23), date(2026, 3, 29))
    first = services.figures.series(units[0], "telephone", [week])
    hits = services.figures.cache.stats.hits
    assert services.figures.figure(units[0], "telephone", week) == first[0]
    assert services.figures.cache.stats.hits == hits + 1
