"""A page asked lately is kept current between its requests (server/live/warm_pages.py): after one of
its units changes, the next request finds every set kept at the new watermark and computes nothing,
with the figures the rows give; a page not asked for a while, or pushed out by newer ones, is let go.
A real hub, figure service and ingest, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timezone
from typing import Any, Iterator

import orjson
import pytest

from tests.live.test_feeds import run
from tests.web.world import day_of_events
from vardkoll.protocol import parse_event_line, validate_event
from vardkoll.server.figures import FigureService
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.ingest.service import Source
from vardkoll.server.live import LiveHub, WarmPages
from vardkoll.server.metrics import Period
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow
from vardkoll.server.web.region_view import Filters, page_sets

REGION = "Region Varm"
UNITS = ["SE2321000016-VM01", "SE2321000016-VM02", "SE2321000016-VM03"]
TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
MARCH = Period(date(2026, 3, 1), TODAY)
WANTED = page_sets(MARCH, Filters(), TODAY)  # Regionvy's 17 sets, the running month's telephone twice


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    with opened.sessions.begin() as session:
        session.add_all(UnitRow(unit=unit, name=f"Vårdcentral {unit[-2:]}", region=REGION) for unit in UNITS)
    opened.units.invalidate()
    events = [
        validate_event(e) for seed, unit in enumerate(UNITS[:2]) for day in (date(2026, 2, 27), TODAY) for e in day_of_events(unit, day, seed=seed, calls=6)
    ]
    opened.ingest.ingest(events, Source("http"))
    opened.figures = FigureService(opened.sessions, opened.units, FigureCache(), clock=lambda: NOW)
    yield opened
    opened.engine.dispose()


def call_now(unit: str, n: int) -> list[Any]:
    """A call of today offered and answered, arriving now."""
    at = datetime(2026, 3, 2, 11, n, tzinfo=timezone.utc)
    return [
        parse_event_line(orjson.dumps({"v": 1, "id": f"warm-{n}-o", "type": "call.offered", "unit": unit, "at": at.isoformat(), "call": f"warm-{n}"})),
        parse_event_line(
            orjson.dumps({"v": 1, "id": f"warm-{n}-a", "type": "call.answered", "unit": unit, "at": at.replace(second=40).isoformat(), "call": f"warm-{n}"})
        ),
    ]


def from_rows(services: Services) -> list[list[dict[str, Any]]]:
    reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: NOW)
    return [[{k: v for k, v in reference.figure(unit, metric, period, cached=False).items() if k != "data"} for unit in UNITS] for metric, period in WANTED]


def without_data(sets: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    return [[{k: v for k, v in figure.items() if k != "data"} for figure in figures] for figures in sets]


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.02)


def test_after_a_change_the_next_request_finds_every_set_kept_and_equal_to_the_rows(services: Services) -> None:
    figures = services.figures
    distinct_sets = len(set(WANTED))

    async def scenario() -> None:
        hub = LiveHub(services.sessions, poll_s=0.05)
        hub.start()
        warm = WarmPages(hub, figures.figure_sets)
        warm.start()
        try:
            figures.figure_sets(UNITS, WANTED)
            warm.asked(UNITS, WANTED)
            # The hub's first reading of the units' versions counts as a change: one refresh, then quiet.
            await until(lambda: warm.refreshes >= 1)
            await asyncio.sleep(0.3)
            before = warm.refreshes

            await asyncio.to_thread(services.ingest.ingest, call_now(UNITS[0], 1), Source("http"))
            await until(lambda: warm.refreshes > before)
            hits = figures.cache.stats.set_hits
            answers = await asyncio.to_thread(figures.figure_sets, UNITS, WANTED)
            assert figures.cache.stats.set_hits == hits + distinct_sets  # nothing left to compute
            assert without_data(answers) == from_rows(services)
        finally:
            warm.stop()
            await hub.stop()

    run(scenario)


def test_without_a_kept_page_the_request_after_a_change_computes_the_changed_unit(services: Services) -> None:
    # The same steps with nothing kept: what the test above would see if the refresh did nothing.
    figures = services.figures
    figures.figure_sets(UNITS, WANTED)
    services.ingest.ingest(call_now(UNITS[0], 2), Source("http"))
    hits = figures.cache.stats.set_hits
    answers = figures.figure_sets(UNITS, WANTED)
    assert figures.cache.stats.set_hits < hits + len(set(WANTED))
    assert without_data(answers) == from_rows(services)


def test_a_page_not_asked_again_is_let_go_and_the_newest_pages_are_kept(services: Services) -> None:
    async def scenario() -> None:
        hub = LiveHub(services.sessions, poll_s=0.05)
        hub.start()
        warm = WarmPages(hub, services.figures.figure_sets, keep_s=0.5, max_pages=2)
        warm.start()
        try:
            pages = [(UNITS, WANTED), (UNITS[:2], WANTED), (UNITS[:1], WANTED)]
            for units, wanted in pages:
                warm.asked(units, wanted)
                await asyncio.sleep(0.05)
            assert [warm.holds(*page) for page in pages] == [False, True, True]  # at most two, the least lately asked gone

            await asyncio.sleep(0.3)
            warm.asked(*pages[2])  # asked again: kept on
            await asyncio.sleep(0.35)
            assert [warm.holds(*page) for page in pages] == [False, False, True]
            await until(lambda: not warm.holds(*pages[2]), timeout_s=2)
        finally:
            warm.stop()
            await hub.stop()

    run(scenario)
