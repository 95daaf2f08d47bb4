"""A unit's day kept in the process (server/figures/kept_ledgers.py) is brought up to date from its
changed rows only, and read whole whenever that could miss something: a row that left the day, a
commit of a previous release that did not set its rows' versions. On SQLite and on PostgreSQL.

The expected figures are worked by hand from the events: telephone same-day share of one day in
Stockholm (UTC+2 in May), numerator the calls answered that day, denominator the calls offered."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterator

import pytest
from sqlalchemy import event, text

from vardkoll.protocol import validate_event
from vardkoll.server.figures import FigureService
from vardkoll.server.figures.cache import FigureCache
from vardkoll.server.figures.kept_ledgers import KeptLedgers
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import Period
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow
from vardkoll.server.storage.stamp_keys import stamp_key

HTTP = Source("http")
VC02, VC10 = "SE2321000016-VC02", "SE2321000016-VC10"
DAY = Period(date(2026, 5, 4), date(2026, 5, 4))


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    with opened.sessions.begin() as session:
        for unit in (VC02, VC10):
            session.add(UnitRow(unit=unit, name="Vårdcentral Test", region="Region Test"))
    opened.units.invalidate()
    yield opened
    opened.engine.dispose()


def uncached(services: Services, kept: KeptLedgers | None = None) -> FigureService:
    """No figure cache and a clock before the day: every answer sums day parts, and a stale day's
    rows come through `kept`."""
    figures = FigureService(services.sessions, services.units, FigureCache(0), clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    if kept is not None:
        figures.kept_ledgers = kept
    return figures


_ids = iter(range(10**6))


def call(kind: str, clock: str, name: str, unit: str = VC02, day: str = "2026-05-04") -> Any:
    return validate_event({"v": 1, "id": f"kl-{next(_ids):05d}", "type": kind, "unit": unit, "at": f"{day}T{clock}:00+02:00", "call": f"call-{name}"})


def share(figures: FigureService, unit: str = VC02) -> tuple[int, int]:
    figure = figures.figure(unit, "telephone", DAY, datetime(2026, 5, 5, 12, tzinfo=timezone.utc))
    return figure["numerator"], figure["denominator"]


def test_a_kept_day_reads_only_its_changed_rows_and_gives_the_figures_of_the_whole(services):
    figures = uncached(services)
    services.ingest.ingest([call("call.offered", "09:00", "a"), call("call.answered", "09:01", "a"), call("call.offered", "09:05", "b")], HTTP)
    assert share(figures) == (1, 2)  # a answered the same day; b not (yet)
    assert figures.kept_ledgers.reads == {"whole": 1, "changed": 0}

    services.ingest.ingest([call("call.answered", "09:06", "b"), call("call.offered", "10:00", "c")], HTTP)
    assert share(figures) == (2, 3)
    assert figures.kept_ledgers.reads == {"whole": 1, "changed": 1}
    assert share(uncached(services)) == (2, 3)  # read whole by a process that kept nothing


def test_a_call_that_leaves_the_day_makes_it_read_whole(services):
    figures = uncached(services)
    services.ingest.ingest([call("call.offered", "09:00", "a"), call("call.answered", "09:01", "a"), call("call.offered", "10:00", "c")], HTTP)
    assert share(figures) == (1, 2)
    # An earlier offer of c, the evening before: c now belongs to 3 May, and a new call d comes to 4 May
    # in the same commit. The changed rows of 4 May are d's only, so the count must tell c is gone.
    services.ingest.ingest([call("call.offered", "23:50", "c", day="2026-05-03"), call("call.offered", "11:00", "d")], HTTP)
    assert share(figures) == (1, 2)  # a and d offered on 4 May, a answered
    assert figures.kept_ledgers.reads == {"whole": 2, "changed": 0}


def test_a_commit_that_did_not_set_its_rows_versions_makes_the_day_read_whole(services):
    """What a process of the previous release does during a rolling upgrade: it merges stamps and bumps
    the unit's version and the day's mark, but neither the row's version nor `row_versions`."""
    figures = uncached(services)
    services.ingest.ingest([call("call.offered", "09:00", "a"), call("call.answered", "09:01", "a"), call("call.offered", "09:05", "b")], HTTP)
    assert share(figures) == (1, 2)
    answered = stamp_key(datetime(2026, 5, 4, 7, 6, tzinfo=timezone.utc), "kl-old-release")
    with services.sessions.begin() as session:
        session.execute(text("UPDATE unit_activity SET version = version + 1 WHERE unit = :unit"), {"unit": VC02})
        version = session.execute(text("SELECT version FROM unit_activity WHERE unit = :unit"), {"unit": VC02}).scalar_one()
        session.execute(text("UPDATE calls SET answered = :stamp WHERE unit = :unit AND call = 'call-b'"), {"stamp": answered, "unit": VC02})
        session.execute(
            text("UPDATE figure_day_parts SET version = :version WHERE unit = :unit AND day = :day"), {"version": version, "unit": VC02, "day": DAY.start}
        )
    assert share(figures) == (2, 2)  # b answered at 09:06 local time: found only by reading the day whole
    assert figures.kept_ledgers.reads == {"whole": 2, "changed": 0}


def test_days_beyond_the_row_limit_are_read_whole_again_and_stay_right(services):
    figures = uncached(services, KeptLedgers(max_rows=2))
    services.ingest.ingest([call("call.offered", "09:00", "a"), call("call.offered", "09:05", "b"), call("call.offered", "09:00", "x", unit=VC10)], HTTP)
    assert share(figures) == (0, 2)
    assert share(figures, VC10) == (0, 1)  # VC02's two rows and VC10's one: over the limit, VC02's day goes
    services.ingest.ingest([call("call.answered", "09:01", "a"), call("call.answered", "09:01", "x", unit=VC10)], HTTP)
    assert share(figures) == (1, 2)
    assert share(figures, VC10) == (1, 1)
    assert figures.kept_ledgers.reads == {"whole": 4, "changed": 0}  # each read evicted the other unit's day


def test_each_unit_reads_back_only_the_rows_changed_since_its_own_kept_day(services, database_url):
    """The units' versions count their own commits: VC02's five against VC10's one. Newer than the least
    of the kept versions (VC10's 1), every row of VC02's day would come back; on PostgreSQL each unit's
    own kept version bounds its rows. Elsewhere the least does, and the rest is passed over in Python:
    the figures are the same on both."""
    figures = uncached(services)
    for name in "abcde":
        services.ingest.ingest([call("call.offered", "09:00", name)], HTTP)
    services.ingest.ingest([call("call.offered", "09:00", "x", unit=VC10)], HTTP)
    assert [share(figures, unit) for unit in (VC02, VC10)] == [(0, 5), (0, 1)]

    services.ingest.ingest([call("call.answered", "09:01", "a"), call("call.offered", "10:00", "f"), call("call.offered", "10:00", "y", unit=VC10)], HTTP)
    returned: list[int] = []

    def count_changed_rows(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.startswith("SELECT 0, calls.unit"):
            returned.append(cursor.rowcount)

    event.listen(services.engine, "after_cursor_execute", count_changed_rows)
    try:
        found = figures.figures([VC02, VC10], "telephone", DAY, datetime(2026, 5, 5, 12, tzinfo=timezone.utc))
    finally:
        event.remove(services.engine, "after_cursor_execute", count_changed_rows)
    # VC02: a answered the same day, a-f offered; VC10: x and y offered.
    assert [(figure["numerator"], figure["denominator"]) for figure in found] == [(1, 6), (0, 2)]
    assert figures.kept_ledgers.reads == {"whole": 2, "changed": 2}
    if database_url.startswith("postgresql"):
        # changed rows a, f and y; one count and one pair of counters per unit. Bounded by the least, b-e too: 11.
        assert returned == [3 + 2 + 2]
