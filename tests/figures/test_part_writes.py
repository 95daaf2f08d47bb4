"""A unit's running day is written at most once per interval; an ended day whenever it is computed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import select

from vardkoll.protocol import validate_event
from vardkoll.server.figures import FigureService
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.figures.part_writes import PartWrites
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import Period
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.tables import FigureDayPart

TODAY = date(2026, 3, 10)
YESTERDAY = date(2026, 3, 9)
HTTP = Source(transport="http")


@dataclass
class Part:
    unit: str
    day: date


class Clock:
    def __init__(self) -> None:
        self.s = 1000.0

    def __call__(self) -> float:
        return self.s


def today_of(unit: str) -> date:
    return TODAY


def test_an_ended_day_is_always_written_and_the_running_day_once_per_interval():
    clock = Clock()
    writes = PartWrites(every_s=60, clock_s=clock)
    first = [Part("VC01", YESTERDAY), Part("VC01", TODAY), Part("VC02", TODAY)]
    assert writes.worth_writing("telephone", first, today_of) == first
    clock.s += 59
    assert writes.worth_writing("telephone", first, today_of) == [first[0]]
    assert writes.worth_writing("assessment", first, today_of) == first, "each metric on its own"
    clock.s += 1
    assert writes.worth_writing("telephone", first[1:2], today_of) == first[1:2]
    assert writes.worth_writing("telephone", first[1:3], today_of) == first[2:3]
    assert writes.worth_writing("telephone", [Part("VC01", date(2026, 3, 11))], today_of) != [], "a day after today (another zone) is running too"


def call(unit: str, n: int, at: str) -> dict:
    return validate_event({"v": 1, "id": f"ev-{n}", "type": "call.offered", "unit": unit, "call": f"call-{n}", "at": at})


def test_a_running_day_read_again_after_an_event_is_not_written_again_within_the_interval(database_url):
    """On a real database: the running day's part is written by the first read, not by the second
    read after a new call (its stored part stays at the first read's version, so it is stale, and the
    next reader computes it from the rows), and again once the interval has passed. The figures are
    right throughout: 1 call offered, then 2, none answered."""
    services = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    try:
        unit = "SE2321000016-PW001"
        clock = Clock()
        figures = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: datetime(2026, 3, 10, 15, tzinfo=timezone.utc))
        figures.part_writes = PartWrites(every_s=60, clock_s=clock)
        today = Period(TODAY, TODAY)

        def stored() -> tuple[int, int | None]:
            with services.sessions() as session:
                return session.execute(
                    select(FigureDayPart.version, FigureDayPart.parts_version).where(
                        FigureDayPart.unit == unit, FigureDayPart.day == TODAY, FigureDayPart.metric == "telephone"
                    )
                ).one()

        services.ingest.ingest([call(unit, 1, "2026-03-10T09:00:00+01:00")], HTTP)
        assert figures.figure(unit, "telephone", today)["denominator"] == 1
        version, parts_version = stored()
        assert parts_version == version, "the first read writes the running day"
        services.ingest.ingest([call(unit, 2, "2026-03-10T10:00:00+01:00")], HTTP)
        assert figures.figure(unit, "telephone", today)["denominator"] == 2
        newer, parts_version = stored()
        assert newer > version and parts_version == version, "not written again within the interval"
        assert figures.figure(unit, "telephone", today)["denominator"] == 2
        clock.s += 60
        assert figures.figure(unit, "telephone", today)["denominator"] == 2
        assert stored() == (newer, newer), "written again once the interval has passed"
    finally:
        services.engine.dispose()
