"""Past periods in the figure cache: new events as they happen leave last month's figures cached; an
event of last month arriving now (an outbox drained after an outage) recomputes them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from vardkoll.protocol import parse_event_line
from vardkoll.server.figures import FigureService
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import Period
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow

UNIT = "SE2321000016-VC01"
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)
OCTOBER = Period(date(2026, 10, 1), date(2026, 10, 31))
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 23))


@pytest.fixture
def services(tmp_path):
    opened = build_services(ServerSettings(database_url=f"sqlite:///{tmp_path / 'settled.db'}"), apply_migrations=True)
    with opened.sessions.begin() as session:
        session.add(UnitRow(unit=UNIT, name="Vårdcentralen Årsta", region="R"))
    opened.units.invalidate()
    yield opened
    opened.engine.dispose()


def store(services, *events: tuple[str, str, datetime], received_at: datetime = NOW) -> None:
    items = [
        parse_event_line(orjson.dumps({"v": 1, "id": event_id, "type": kind, "unit": UNIT, "at": at.isoformat(), "call": f"call-{event_id}"}))
        for event_id, kind, at in events
    ]
    report = services.ingest.ingest(items, Source("http"), received_at=received_at)
    assert report.new == len(items)


def test_last_months_figure_stays_cached_through_todays_events_and_not_through_a_late_one(services):
    figures = FigureService(services.sessions, services.units, clock=lambda: NOW)
    store(services, ("oct-1", "call.offered", datetime(2026, 10, 12, 8, 0, tzinfo=timezone.utc)), received_at=datetime(2026, 10, 12, 8, 1, tzinfo=timezone.utc))
    october = figures.figure(UNIT, "telephone", OCTOBER)
    assert october["denominator"] == 1
    store(services, ("nov-1", "call.offered", NOW - timedelta(minutes=1)))  # today, as it happens
    hits = figures.cache.stats.hits
    cached = figures.figure(UNIT, "telephone", OCTOBER)
    assert figures.cache.stats.hits == hits + 1
    assert {**cached, "data": None} == {**october, "data": None} == {**figures.figure(UNIT, "telephone", OCTOBER, cached=False), "data": None}
    assert figures.figure(UNIT, "telephone", NOVEMBER)["denominator"] == 1  # the live month is recomputed
    # An outbox drained after an outage: an October call arrives now. October is computed again.
    store(services, ("oct-2", "call.offered", datetime(2026, 10, 20, 9, 0, tzinfo=timezone.utc)))
    again = figures.figure(UNIT, "telephone", OCTOBER)
    assert again["denominator"] == 2 == figures.figure(UNIT, "telephone", OCTOBER, cached=False)["denominator"]


def test_an_event_of_a_day_that_just_ended_recomputes_that_day(services):
    just_ended = datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc)  # 01:30 in Stockholm: yesterday ended 90 minutes ago
    figures = FigureService(services.sessions, services.units, clock=lambda: just_ended)
    yesterday = Period(date(2026, 11, 22), date(2026, 11, 22))
    store(services, ("y-1", "call.offered", datetime(2026, 11, 22, 22, 50, tzinfo=timezone.utc)), received_at=just_ended)
    assert figures.figure(UNIT, "telephone", yesterday)["denominator"] == 1
    # Stored five minutes later, about a moment of that day: the day's figure depends on it.
    store(services, ("y-2", "call.offered", datetime(2026, 11, 22, 22, 55, tzinfo=timezone.utc)), received_at=just_ended + timedelta(minutes=5))
    assert figures.figure(UNIT, "telephone", yesterday)["denominator"] == 2
