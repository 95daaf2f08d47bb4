"""The storage on both backends (SQLite file, real PostgreSQL): migrations, exactly-once ingest and the
figures kept in the database, which must equal what `vardkoll replay` computes from the same events.

Every test here takes `database_url` (tests/support/plugin.py) and so runs once per backend.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, inspect, select

from conftest import scenario_files
from vardkoll.protocol import EventBase, EventRejected, parse_event_line
from vardkoll.server.ingest.service import IngestReport, Source
from vardkoll.server.metrics import Period
from vardkoll.server.replay import replay_stream
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage import make_engine, migrate
from vardkoll.server.storage.tables import CallRow, CaseRow, DeadLetter, DoctorVisitRow, StoredEvent

SCENARIOS = scenario_files()
EXAMPLE = Path(__file__).parents[2] / "vardkoll" / "examples" / "example-clinics.jsonl.gz"
HTTP = Source("http")
LIVE_KEYS = ("definition_version", "data")  # not part of a replay result


# -- helpers ---------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    items: list[Any]  # each event, or the EventRejected for its line, in file order
    results: list[dict[str, Any]]  # the figures replay gives
    period: Period
    as_of: datetime | None
    duplicates: int = 0  # as replay counts them
    rejected: int = 0
    events: list[EventBase] = field(init=False)
    distinct: int = field(init=False)

    def __post_init__(self) -> None:
        self.events = [item for item in self.items if not isinstance(item, EventRejected)]
        self.distinct = len({(event.unit, event.id) for event in self.events})


def parse_lines(data: bytes) -> list[Any]:
    items: list[Any] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            items.append(parse_event_line(line))
        except EventRejected as exc:
            items.append(exc)
    return items


def load_scenario(expected_path: Path) -> Scenario:
    document = json.loads(expected_path.read_text())
    events_path = expected_path.with_name(expected_path.name.replace(".expected.json", ".jsonl"))
    args, expected = document["replay_args"], document["expected"]
    as_of = datetime.fromisoformat(args["as_of"]) if "as_of" in args else None
    return Scenario(
        expected_path.name.removesuffix(".expected.json"),
        parse_lines(events_path.read_bytes()),
        expected["results"],
        Period(date.fromisoformat(args["from"]), date.fromisoformat(args["to"])),
        as_of,
        expected["duplicates"],
        len(expected["rejected"]),
    )


def example_scenario(lines: int) -> Scenario:
    """The first `lines` events of the bundled example month, with replay's figures computed here."""
    with gzip.open(EXAMPLE, "rb") as stream:
        data = b"".join(stream.readline() for _ in range(lines))
    document = replay_stream(io.BytesIO(data), workers=0)
    first = document["results"][0]
    period = Period(date.fromisoformat(first["from"]), date.fromisoformat(first["to"]))
    return Scenario(f"example-{lines}", parse_lines(data), document["results"], period, None, document["duplicates"], len(document["rejected"]))


def shuffled_batches(items: list[Any], rng: random.Random, repeat_share: float, max_batch: int, batches: int | None = None) -> list[list[Any]]:
    """`items` and a random `repeat_share` of them again, shuffled and cut into batches (of at most
    `max_batch` items, or into exactly `batches` batches)."""
    stream = items + rng.sample(items, round(len(items) * repeat_share))
    rng.shuffle(stream)
    if batches is not None:
        cuts = sorted(rng.sample(range(1, len(stream)), batches - 1)) if batches > 1 else []
        return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    out = []
    while stream:
        size = rng.randint(1, max_batch)
        out.append(stream[:size])
        stream = stream[size:]
    return out


def counts(batch: list[Any]) -> tuple[int, int]:
    """(events, rejected items) in a batch."""
    rejected = sum(isinstance(item, EventRejected) for item in batch)
    return len(batch) - rejected, rejected


def normalised(figure: dict[str, Any], keep_live: bool = False) -> dict[str, Any]:
    """As the API would send it (JSON), without the live-only keys unless asked."""
    figure = json.loads(orjson.dumps(figure))
    return figure if keep_live else {key: value for key, value in figure.items() if key not in LIVE_KEYS}


def stored_figures(services: Services, scenario: Scenario, keep_live: bool = False) -> list[dict[str, Any]]:
    return [normalised(services.figures.figure(r["unit"], r["metric"], scenario.period, scenario.as_of), keep_live) for r in scenario.results]


def assert_figures_match_replay(services: Services, scenario: Scenario) -> None:
    for got, want in zip(stored_figures(services, scenario), scenario.results, strict=True):
        assert got == want, f"{scenario.name}: {want['unit']} {want['metric']} differs from replay"


def count_rows(services: Services, table: Any) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


@pytest.fixture
def open_services(database_url):
    """`open_services(migrate=True)`: one more server's worth of services on the test's database."""
    opened: list[Services] = []

    def open_one(run_migrations: bool = True) -> Services:
        opened.append(build_services(ServerSettings(database_url=database_url), apply_migrations=run_migrations))
        return opened[-1]

    yield open_one
    for services in opened:
        services.engine.dispose()


# -- migrations ------------------------------------------------------------------------------------------


def test_migrations_run_twice_without_error(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine)
        tables = set(inspect(engine).get_table_names())
        migrate(engine)
        assert set(inspect(engine).get_table_names()) == tables
        assert {"events", "calls", "cases", "listing_snapshots", "doctor_visits", "alembic_version"} <= tables
        with engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert len(versions) == 1
    finally:
        engine.dispose()


def test_a_second_server_migrating_the_same_database_changes_nothing(open_services):
    first = open_services()
    scenario = load_scenario(SCENARIOS[0])
    first.ingest.ingest(scenario.items, HTTP)
    second = open_services()  # migrates again, on a database that holds data
    assert stored_figures(second, scenario, keep_live=True) == stored_figures(first, scenario, keep_live=True)


# -- ingest: shuffled batches, repeats, exactly once -----------------------------------------------------


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_shuffled_batches_with_repeats_give_the_replay_figures(expected_path, open_services):
    scenario = load_scenario(expected_path)
    assert scenario.distinct == len(scenario.events) - scenario.duplicates, "the scenario repeats no id with a different event"
    services = open_services()
    rng = random.Random(scenario.name)
    batches = shuffled_batches(scenario.items, rng, repeat_share=0.3, max_batch=6)

    reports = [services.ingest.ingest(batch, HTTP) for batch in batches]

    sent_events = sum(counts(batch)[0] for batch in batches)
    sent_rejected = sum(counts(batch)[1] for batch in batches)
    assert sum(r.new for r in reports) == scenario.distinct
    assert sum(r.duplicates for r in reports) == sent_events - scenario.distinct
    assert sum(len(r.rejected) for r in reports) == sent_rejected
    assert {event.id for event in scenario.events} == {i for r in reports for i in r.committed}
    assert count_rows(services, StoredEvent.__table__) == scenario.distinct
    assert count_rows(services, DeadLetter.__table__) == sent_rejected
    assert_figures_match_replay(services, scenario)

    # Every batch again, as a collector that never got its acknowledgements would send it.
    before = stored_figures(services, scenario, keep_live=True)
    for batch in batches:
        report = services.ingest.ingest(batch, HTTP)
        events, rejected = counts(batch)
        assert (report.new, report.duplicates, len(report.rejected)) == (0, events, rejected)
        assert sorted(report.committed) == sorted(item.id for item in batch if not isinstance(item, EventRejected))
        assert report.units_changed == set()
    assert stored_figures(services, scenario, keep_live=True) == before
    assert count_rows(services, StoredEvent.__table__) == scenario.distinct


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_shuffled_batches_committed_in_groups_give_the_replay_figures(expected_path, open_services):
    """As the MQTT consumer commits the batches waiting in its queue: several in one transaction."""
    scenario = load_scenario(expected_path)
    services = open_services()
    batches = shuffled_batches(scenario.items, random.Random(scenario.name + "-groups"), repeat_share=0.3, max_batch=6)
    reports: list[IngestReport] = []
    for start in range(0, len(batches), 4):
        group = batches[start : start + 4]
        reports += services.ingest.ingest_many([(batch, HTTP) for batch in group])
    assert len(reports) == len(batches)
    for batch, report in zip(batches, reports):
        events, rejected = counts(batch)
        assert report.new + report.duplicates == events and len(report.rejected) == rejected, "each batch reports its own events"
    assert sum(r.new for r in reports) == scenario.distinct
    assert {event.id for event in scenario.events} == {i for r in reports for i in r.committed}
    assert count_rows(services, StoredEvent.__table__) == scenario.distinct
    assert_figures_match_replay(services, scenario)


def test_an_event_in_two_batches_of_one_group_counts_once_and_both_acknowledge_it(open_services):
    services = open_services()
    unit = "SE2321000016-VC77"
    offered = parse_event_line(
        orjson.dumps({"v": 1, "id": "grp-1", "type": "call.offered", "unit": unit, "at": "2026-05-04T09:00:00+02:00", "call": "call-grp1"})
    )
    other = parse_event_line(
        orjson.dumps({"v": 1, "id": "grp-1", "type": "call.offered", "unit": unit, "at": "2026-05-04T09:05:00+02:00", "call": "call-grp1"})
    )
    a, b, c = services.ingest.ingest_many(
        [([offered], Source("mqtt", unit, "pi-a")), ([offered], Source("mqtt", unit, "pi-b")), ([other], Source("mqtt", unit, "pi-c"))]
    )
    assert (a.new, a.duplicates, a.committed) == (1, 0, ["grp-1"])
    assert (b.new, b.duplicates, b.committed) == (0, 1, ["grp-1"])
    assert (c.new, c.committed, c.rejected) == (0, [], [("grp-1", "event id was already used by a different event of this unit")])
    assert count_rows(services, StoredEvent.__table__) == 1
    with services.sessions() as session:
        assert session.execute(select(DeadLetter.device, DeadLetter.event_id)).all() == [("pi-c", "grp-1")]


def test_an_id_reused_for_another_event_in_a_later_batch_brings_none_of_its_content(open_services):
    """Ingest builds a batch's metric rows before it knows which events are new; an id stored before
    with other content must not add its call to the state. By SPEC 2.1: one call offered on 4 May,
    answered the same day: 1 of 1. Were the refused event merged, call-reuse2 would be offered too: 1 of 2."""
    services = open_services()
    unit = "SE2321000016-VC78"

    def event(**fields):
        return parse_event_line(orjson.dumps({"v": 1, "unit": unit, **fields}))

    first = services.ingest.ingest([event(id="reuse-1", type="call.offered", at="2026-05-04T09:00:00+02:00", call="call-reuse1")], HTTP)
    assert first.new == 1
    later = services.ingest.ingest(
        [
            event(id="reuse-1", type="call.offered", at="2026-05-04T08:00:00+02:00", call="call-reuse2"),
            event(id="reuse-2", type="call.answered", at="2026-05-04T09:01:00+02:00", call="call-reuse1"),
        ],
        HTTP,
    )
    assert (later.new, later.committed) == (1, ["reuse-2"])
    assert later.rejected == [("reuse-1", "event id was already used by a different event of this unit")]
    figure = services.figures.figure(unit, "telephone", Period(date(2026, 5, 4), date(2026, 5, 4)), cached=False)
    assert (figure["numerator"], figure["denominator"]) == (1, 1)


def test_the_rows_ingest_writes_read_back_through_the_orm_as_written(open_services):
    """Ingest writes with its own multi-row SQL (SQLite: VALUES lists; PostgreSQL: binary arrays);
    what it stored must read back through the ORM exactly: times, dates, booleans, NULLs, bytes."""
    services = open_services()
    unit = "SE2321000016-VC80"

    def event(**fields):
        return parse_event_line(orjson.dumps({"v": 1, "unit": unit, **fields}))

    received = datetime(2026, 5, 4, 23, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    items = [
        event(id="rt-1", type="care.contact", at="2026-05-04T23:30:00+02:00", case="case-rt1", listed=False, channel="phone"),
        event(
            id="rt-2",
            type="visit.completed",
            at="2026-05-05T00:15:00+02:00",
            patient="pat-rt01",
            practitioner="doc-rt01",
            profession="doctor",
            listed=True,
            fixed_doctor=None,
        ),
    ]
    report = services.ingest.ingest(items, Source("mqtt", unit, "pi-rt"), received_at=received)
    assert report.new == 2
    with services.sessions() as session:
        stored = {row.event_id: row for row in session.scalars(select(StoredEvent).where(StoredEvent.unit == unit))}
        case = session.get(CaseRow, (unit, "case-rt1"))
        visit = session.get(DoctorVisitRow, (unit, "rt-2"))
    # 2026-05-04 21:30:00 UTC is 1 777 930 200 s after 1970-01-01.
    assert stored["rt-1"].at_us == 1_777_930_200_000_000
    assert stored["rt-1"].received_at == received and stored["rt-1"].device == "pi-rt"
    assert orjson.loads(stored["rt-1"].body)["listed"] is False
    assert (case.contact, case.contact_day, case.listed) == ("01777930200000000|rt-1", date(2026, 5, 4), False)
    assert (case.assessed, case.assessed_day, case.profession, case.excluded) == (None, None, None, None)
    assert (visit.day, visit.at_us, visit.fixed_doctor) == (date(2026, 5, 5), 1_777_932_900_000_000, None)


def test_events_stored_before_between_new_ones_are_told_apart_across_statements(open_services):
    """A batch of 900 offers (three INSERT statements of at most 400) of which every third was stored
    before, and every ninth of those comes back with other content: the 600 others are new, 200 are
    duplicates, 100 are refused, and the calls table holds the 900 calls and none of the refused ones."""
    services = open_services()
    unit = "SE2321000016-VC79"

    def offer(index: int, call: str) -> EventBase:
        at = f"2026-05-04T{8 + index // 120:02d}:{index % 120 // 2:02d}:{index % 2 * 30:02d}+02:00"
        return parse_event_line(orjson.dumps({"v": 1, "id": f"mix-{index:03d}", "type": "call.offered", "unit": unit, "at": at, "call": call}))

    first = services.ingest.ingest([offer(i, f"call-{i:03d}") for i in range(0, 900, 3)], HTTP)
    assert first.new == 300
    batch = [offer(i, f"other-{i:03d}" if i % 9 == 0 else f"call-{i:03d}") for i in range(900)]
    random.Random(79).shuffle(batch)
    second = services.ingest.ingest(batch, HTTP)

    assert (second.new, second.duplicates, len(second.rejected)) == (600, 200, 100)
    assert sorted(second.committed) == sorted(f"mix-{i:03d}" for i in range(900) if i % 9 != 0)
    assert {event_id for event_id, _ in second.rejected} == {f"mix-{i:03d}" for i in range(0, 900, 9)}
    with services.sessions() as session:
        calls = set(session.scalars(select(CallRow.call).where(CallRow.unit == unit)))
    assert calls == {f"call-{i:03d}" for i in range(900)}


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_the_same_batch_twice_is_all_duplicates_and_changes_no_figure(expected_path, open_services):
    scenario = load_scenario(expected_path)
    services = open_services()
    batch = scenario.items
    first = services.ingest.ingest(batch, HTTP)
    assert first.new == scenario.distinct
    assert_figures_match_replay(services, scenario)
    before = stored_figures(services, scenario, keep_live=True)

    second = services.ingest.ingest(batch, HTTP)

    assert second.new == 0
    assert second.duplicates == len(scenario.events)
    assert len(second.rejected) == scenario.rejected
    assert second.units_changed == set()
    assert stored_figures(services, scenario, keep_live=True) == before


# -- ingest: two server processes at once ----------------------------------------------------------------


def ingest_concurrently(servers: list[Services], batches: list[list[list[Any]]]) -> list[list[IngestReport]]:
    """Each server ingests its batches in its own thread, batch i of all of them at the same moment.
    An exception from the service is re-raised here, unretried: exactly-once must not need retries."""
    rounds = len(batches[0])
    assert all(len(b) == rounds for b in batches)
    barrier = threading.Barrier(len(servers), timeout=120)
    reports: list[list[IngestReport]] = [[] for _ in servers]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for batch in batches[index]:
                barrier.wait()
                reports[index].append(servers[index].ingest.ingest(batch, HTTP))
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,), name=f"ingest-{i}", daemon=True) for i in range(len(servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "an ingest thread hangs"
    if errors:
        raise errors[0]
    return reports


@pytest.fixture
def no_deadlock_retries(monkeypatch):
    """The service retries a transaction PostgreSQL chose as a deadlock victim. Writing every table in
    key order must avoid deadlocks in the first place, so here a deadlock fails the test."""
    from vardkoll.server.ingest import service

    monkeypatch.setattr(service, "DEADLOCK_RETRIES", 1)


def check_concurrent_ingest(open_services, scenario: Scenario, servers: int, rounds: int, seed: str, overlap: bool = True) -> None:
    """Several servers on one database ingest `scenario` at once; then each must give replay's figures.

    overlap: each item goes to one or two of the servers (a collector re-sending to whichever server
    picks it up), so batches committed at the same moment hold the same events. Otherwise each item
    goes to exactly one server (a shared subscription splitting the batches): no event is in two
    servers' batches, but the same calls and cases are updated by several transactions at once.
    """
    opened = [open_services()] + [open_services(run_migrations=False) for _ in range(servers - 1)]
    rng = random.Random(seed)
    shares: list[list[Any]] = [[] for _ in opened]
    for item in scenario.items:
        for index in rng.sample(range(servers), rng.randint(1, 2) if overlap else 1):
            shares[index].append(item)
    rounds = max(1, min(rounds, *(len(share) for share in shares)))
    # Each server takes its share in its own order, some items twice.
    batches = [shuffled_batches(share, rng, repeat_share=0.2, max_batch=0, batches=rounds) for share in shares]

    reports = ingest_concurrently(opened, batches)

    flat = [report for per_server in reports for report in per_server]
    assert sum(r.new for r in flat) == scenario.distinct, "each distinct event is stored by exactly one of the servers"
    sent_events = sum(counts(batch)[0] for per_server in batches for batch in per_server)
    assert sum(r.duplicates for r in flat) == sent_events - scenario.distinct
    assert count_rows(opened[0], StoredEvent.__table__) == scenario.distinct
    for services in opened:
        assert_figures_match_replay(services, scenario)


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_two_servers_ingesting_overlapping_batches_at_once_count_each_event_once(expected_path, open_services, no_deadlock_retries):
    scenario = load_scenario(expected_path)
    check_concurrent_ingest(open_services, scenario, servers=2, rounds=4, seed=scenario.name)


@pytest.mark.parametrize("overlap", [True, False], ids=["overlapping", "disjoint"])
def test_four_servers_ingesting_busy_days_at_once_count_each_event_once(open_services, overlap, no_deadlock_retries):
    """Thousands of events of four clinics, in ten rounds of four big batches committed at the same moment.
    On PostgreSQL this holds only if every transaction locks rows (events, calls, cases) in one order:
    two that take the same rows in different orders deadlock (without key order, most runs do)."""
    scenario = example_scenario(6000)
    assert scenario.rejected == 0 and len(scenario.results) == 16
    check_concurrent_ingest(open_services, scenario, servers=4, rounds=10, seed="busy-days", overlap=overlap)
