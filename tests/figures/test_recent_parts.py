"""A running day's part computed by one reader is reused by the next reader of the same day version, and
never once the day has a newer version: worked by hand, one call offered, then a second."""

from __future__ import annotations

from datetime import date, datetime, timezone

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


def test_the_next_reader_of_the_same_day_version_reuses_the_part_and_a_newer_version_is_counted(database_url):
    services = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    try:
        # No figure cache and a clock inside the day: every answer is summed from the day parts.
        figures = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: datetime(2026, 3, 10, 15, tzinfo=timezone.utc))
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
        reference = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: datetime(2026, 3, 10, 15, tzinfo=timezone.utc))
        for period in (TODAY, MONTH):
            answer = {k: v for k, v in figures.figure(UNIT, "telephone", period).items() if k != "data"}
            assert answer == {k: v for k, v in reference.figure(UNIT, "telephone", period, cached=False).items() if k != "data"}
    finally:
        services.engine.dispose()
