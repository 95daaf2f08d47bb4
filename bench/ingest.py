"""Ingest benchmark (SPEC 6): events/s through a real Mosquitto into the database with figures' state
updated, against a bare paho subscriber that writes the same rows with executemany, in the same run.

Two baselines, each a bare paho subscriber committing once per message:

  same rows    executemany of exactly the rows vardkoll's ingest writes for that batch (the events
               archive, calls, cases, listing snapshots, doctor visits; same schema and indexes),
               computed before the clock starts: the database work alone, no validation, no logic.
               This is the baseline SPEC 6 and the issue describe ("writing the same rows").
  events only  executemany of one 5-column row per event into a table with one index: the floor of
               any subscriber that stores events at all.

    ./dev vardkoll ...   (set up first), then:
    .venv/bin/python bench/ingest.py [--events 200000] [--batch 500] [--repeat 3] [--postgres]

Needs the `mosquitto` binary. Every row of every round gets a fresh database: a SQLite file, or with
--postgres a database in a throwaway PostgreSQL cluster (fsync off, as in the tests, for all rows).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import date, datetime, timezone
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text

from bench_common import machine, throwaway_postgres_databases
from vardkoll.demo.broker import start_broker  # noqa: E402
from vardkoll.protocol.batches import parse_batch  # noqa: E402
from vardkoll.server.ingest.entity_rows import CALL_COLUMNS, CASE_COLUMNS, SNAPSHOT_COLUMNS, VISIT_COLUMNS  # noqa: E402
from vardkoll.server.ingest.prepare import ARCHIVE_COLUMNS, Source, prepare  # noqa: E402
from vardkoll.server.metrics import UnitConfig  # noqa: E402
from vardkoll.protocol.topics import ack_topic, events_topic  # noqa: E402
from vardkoll.simulation import generate  # noqa: E402
from vardkoll.server.services import build_consumer, build_services  # noqa: E402
from vardkoll.server.settings import ServerSettings  # noqa: E402
from vardkoll.server.storage import make_engine  # noqa: E402


def batches(count: int, size: int) -> list[tuple[str, bytes, int]]:
    """(topic, payload, events) per batch; distinct events only, grouped per unit as collectors send."""
    per_device: defaultdict[tuple[str, str], list[dict]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for event in generate(seed=3, units=20, days=400):
        key = (event["unit"], event["id"])
        if key in seen:
            continue
        seen.add(key)
        per_device[(event["unit"], event.get("device") or "bench")].append(event)
        if len(seen) >= count:
            break
    out = []
    for (unit, device), events in per_device.items():
        for start in range(0, len(events), size):
            chunk = events[start : start + size]
            out.append((events_topic(unit, device), orjson.dumps({"device": device, "events": chunk}), len(chunk)))
    return out


def publish_all(port: int, work: list[tuple[str, bytes, int]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    sent = [client.publish(topic, payload, qos=1) for topic, payload, _ in work]
    for info in sent:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


def run_baseline(port: int, url: str, work: list[tuple[str, bytes, int]]) -> float:
    """A bare subscriber: parse the batch and executemany the rows, commit per message."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bare_events"))
        connection.execute(
            text("CREATE TABLE bare_events (unit VARCHAR(40), event_id VARCHAR(64), type VARCHAR(32), at VARCHAR(40), body TEXT, PRIMARY KEY (unit, event_id))")
        )
    total = sum(n for _, _, n in work)
    done = threading.Event()
    stored = [0]

    def on_message(client, userdata, message) -> None:
        batch = orjson.loads(message.payload)
        rows = [{"unit": e["unit"], "event_id": e["id"], "type": e["type"], "at": e["at"], "body": orjson.dumps(e).decode()} for e in batch["events"]]
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO bare_events VALUES (:unit, :event_id, :type, :at, :body)"), rows)
        stored[0] += len(rows)
        if stored[0] >= total:
            done.set()

    return _timed_subscriber(port, work, on_message, done)


TableRows = dict[str, tuple[tuple[str, ...], list[tuple]]]


class _DefaultUnits:
    """Every unit with the default settings, as the benchmark's server has them (no registry)."""

    @staticmethod
    def config(unit: str) -> UnitConfig:
        return UnitConfig()


def same_rows(work: list[tuple[str, bytes, int]], sqlite: bool) -> dict[bytes, TableRows]:
    """Per payload, the rows vardkoll's ingest writes for it (its own `prepare`), as the driver takes
    them: for SQLite dates and times as the text the ORM stores, for psycopg as they are."""
    received = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    out: dict[bytes, TableRows] = {}
    for topic, payload, _ in work:
        unit, device = topic.split("/")[2:4]
        _, items = parse_batch(payload, 10**6)
        prepared = prepare([(items, Source("mqtt", unit=unit, device=device))], _DefaultUnits(), received)
        entity = prepared.entity_rows
        plain = (lambda rows: [tuple(_as_sqlite_text(v) for v in row) for row in rows]) if sqlite else (lambda rows: [tuple(row) for row in rows])
        out[payload] = {
            "events": (ARCHIVE_COLUMNS, plain(prepared.archive_rows)),
            "calls": (CALL_COLUMNS, plain(entity.calls())),
            "cases": (CASE_COLUMNS, plain(entity.cases())),
            "listing_snapshots": (SNAPSHOT_COLUMNS, plain(entity.snapshots())),
            "doctor_visits": (VISIT_COLUMNS, plain(entity.visits())),
        }
    return out


def _as_sqlite_text(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(" ")
    return value.isoformat() if isinstance(value, date) else value


def run_same_rows_baseline(port: int, url: str, work: list[tuple[str, bytes, int]]) -> float:
    """A bare subscriber writing exactly vardkoll's rows (precomputed) with executemany, commit per message."""
    from sqlmodel import SQLModel

    import vardkoll.server.storage.tables  # noqa: F401  (the tables, with their indexes)

    sqlite = url.startswith("sqlite")
    rows_of = same_rows(work, sqlite)
    mark = "?" if sqlite else "%s"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    total = sum(n for _, _, n in work)
    done = threading.Event()
    stored = [0]

    def on_message(client, userdata, message) -> None:
        tables = rows_of[bytes(message.payload)]
        with engine.begin() as connection:
            for table, (columns, rows) in tables.items():
                if rows:
                    names = ", ".join(f'"{c}"' for c in columns)
                    marks = ", ".join(mark for _ in columns)
                    connection.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING', rows)
        stored[0] += len(tables["events"][1])
        if stored[0] >= total:
            done.set()

    return _timed_subscriber(port, work, on_message, done)


def _timed_subscriber(port: int, work: list[tuple[str, bytes, int]], on_message, done: threading.Event) -> float:
    total = sum(n for _, _, n in work)
    failures: list[BaseException] = []

    def guarded(client, userdata, message) -> None:
        try:
            on_message(client, userdata, message)
        except BaseException as exc:  # a broken baseline must stop the run, not leave it waiting
            failures.append(exc)
            done.set()

    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    subscriber.on_message = guarded
    subscriber.connect("127.0.0.1", port)
    subscriber.subscribe("vardkoll/v1/+/+/events", qos=1)
    subscriber.loop_start()
    time.sleep(0.5)
    started = time.perf_counter()
    publish_all(port, work)
    finished = done.wait(600)
    elapsed = time.perf_counter() - started
    subscriber.loop_stop()
    subscriber.disconnect()
    if failures:
        raise failures[0]
    if not finished:
        raise TimeoutError("the subscriber did not store every event within 600 s")
    return total / elapsed


def run_vardkoll(port: int, url: str, work: list[tuple[str, bytes, int]]) -> float:
    settings = ServerSettings(database_url=url, mqtt_url=f"mqtt://127.0.0.1:{port}", dev=True)
    services = build_services(settings, apply_migrations=True)
    consumer = build_consumer(services, client_id="bench-server")
    consumer.start()
    consumer.connected.wait(10)
    total = sum(n for _, _, n in work)
    acknowledged = [0]
    done = threading.Event()

    def on_ack(client, userdata, message) -> None:
        acknowledged[0] += len(orjson.loads(message.payload)["committed"])
        if acknowledged[0] >= total:
            done.set()

    listener = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    listener.on_message = on_ack
    listener.connect("127.0.0.1", port)
    listener.subscribe(ack_topic("+", "+"), qos=1)
    listener.loop_start()
    time.sleep(0.5)
    started = time.perf_counter()
    publish_all(port, work)
    finished = done.wait(600)
    elapsed = time.perf_counter() - started
    listener.loop_stop()
    consumer.stop()
    if not finished:
        raise TimeoutError(f"vardkoll acknowledged {acknowledged[0]} of {total} events within 600 s")
    return total / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three rows, each on fresh databases (default 3)")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster instead of SQLite files")
    args = parser.parse_args()
    work = batches(args.events, args.batch)
    print(f"events {sum(n for _, _, n in work):,} in batches of {args.batch}, database {'PostgreSQL' if args.postgres else 'SQLite'}; {machine()}")
    rounds: list[tuple[float, float, float]] = []
    with ExitStack() as stack:
        if args.postgres:
            urls = iter(stack.enter_context(throwaway_postgres_databases(3 * args.repeat)))
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vardkoll-bench-")))
            urls = (f"sqlite:///{folder / f'{index}.db'}" for index in itertools.count())
        for round_number in range(1, args.repeat + 1):
            broker = start_broker()  # a fresh one per round: no session or queue left from the last
            if broker.kind != "mosquitto":
                broker.stop()
                print("this benchmark needs the mosquitto binary", file=sys.stderr)
                return 2
            try:
                row = (
                    run_baseline(broker.port, next(urls), work),
                    run_same_rows_baseline(broker.port, next(urls), work),
                    run_vardkoll(broker.port, next(urls), work),
                )
            finally:
                broker.stop()
            rounds.append(row)
            print(
                f"round {round_number}: events only {row[0]:,.0f}   same rows {row[1]:,.0f}   vardkoll {row[2]:,.0f} events/s   vardkoll/same rows {row[2] / row[1]:.2f}"
            )
    baseline, same, ours = (statistics.median(values) for values in zip(*rounds))
    ratio = statistics.median(ours_ / same_ for _, same_, ours_ in rounds)
    print(f"median of {args.repeat} rounds (events/s):")
    print(f"  bare paho + executemany, events only: {baseline:,.0f}   vardkoll/this {ours / baseline:.2f}")
    print(f"  bare paho + executemany, same rows:   {same:,.0f}   vardkoll/this {ratio:.2f} (median of the rounds' ratios)")
    print(f"  vardkoll ingest:                      {ours:,.0f}")
    print(
        f"goal >= 20,000 events/s: {'met' if ours >= 20_000 else 'NOT met'}; goal >= 0.9 of the same-rows subscriber: {'met' if ratio >= 0.9 else 'NOT met'} ({ratio:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
