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
    .venv/bin/python bench/ingest.py [--events 200000] [--batch 500] [--database-url URL]

Needs the `mosquitto` binary. The SQLite database is a fresh file per run; give --database-url for
PostgreSQL (the benchmark creates its tables in that database; use a throwaway one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text

from vardkoll.demo.broker import start_broker  # noqa: E402
from vardkoll.protocol.batches import parse_batch  # noqa: E402
from vardkoll.server.ingest.entity_rows import _CALL_COLUMNS, _CASE_COLUMNS, _SNAPSHOT_COLUMNS, _VISIT_COLUMNS, EntityRows  # noqa: E402
from vardkoll.server.metrics import UnitConfig  # noqa: E402
from vardkoll.server.storage.stamp_keys import epoch_us  # noqa: E402
from vardkoll.protocol.topics import ack_topic, events_topic  # noqa: E402
from vardkoll.simulation import generate  # noqa: E402
from vardkoll.server.ingest.mqtt_consumer import MqttConsumer  # noqa: E402
from vardkoll.server.services import build_services  # noqa: E402
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
        connection.execute(text("CREATE TABLE bare_events (unit VARCHAR(40), event_id VARCHAR(64), type VARCHAR(32), at VARCHAR(40), body TEXT, PRIMARY KEY (unit, event_id))"))
    total = sum(n for _, _, n in work)
    done = threading.Event()
    stored = [0]

    def on_message(client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        batch = orjson.loads(message.payload)
        rows = [{"unit": e["unit"], "event_id": e["id"], "type": e["type"], "at": e["at"], "body": orjson.dumps(e).decode()} for e in batch["events"]]
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO bare_events VALUES (:unit, :event_id, :type, :at, :body)"), rows)
        stored[0] += len(rows)
        if stored[0] >= total:
            done.set()

    return _timed_subscriber(port, work, on_message, done)


_EVENT_COLUMNS = ("unit", "event_id", "type", "at_us", "device", "body", "received_at")
TableRows = dict[str, tuple[tuple[str, ...], list[tuple]]]


def same_rows(work: list[tuple[str, bytes, int]]) -> dict[bytes, TableRows]:
    """Per payload, the rows vardkoll's ingest writes for it, as plain driver values (SQLite)."""
    import msgspec

    received = "2026-11-23 12:00:00.000000"
    out: dict[bytes, TableRows] = {}
    for topic, payload, _ in work:
        device = topic.split("/")[3]
        _, items = parse_batch(payload, 10**6)
        entity = EntityRows()
        for event in items:
            entity.add(event, UnitConfig())
        plain = lambda rows, columns: [tuple(v.isoformat() if hasattr(v, "isoformat") else v for v in (row[c] for c in columns)) for row in rows]  # noqa: E731
        out[payload] = {
            "events": (_EVENT_COLUMNS, [(e.unit, e.id, e.type, epoch_us(e.at), e.device or device, msgspec.json.encode(e), received) for e in items]),
            "calls": (_CALL_COLUMNS, plain(entity.calls(), _CALL_COLUMNS)),
            "cases": (_CASE_COLUMNS, plain(entity.cases(), _CASE_COLUMNS)),
            "listing_snapshots": (_SNAPSHOT_COLUMNS, plain(entity.snapshots, _SNAPSHOT_COLUMNS)),
            "doctor_visits": (_VISIT_COLUMNS, plain(entity.visits, _VISIT_COLUMNS)),
        }
    return out


def run_same_rows_baseline(port: int, url: str, work: list[tuple[str, bytes, int]]) -> float:
    """A bare subscriber writing exactly vardkoll's rows (precomputed) with executemany, commit per message."""
    from sqlmodel import SQLModel

    import vardkoll.server.storage.tables  # noqa: F401  (the tables, with their indexes)

    rows_of = same_rows(work)
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    total = sum(n for _, _, n in work)
    done = threading.Event()
    stored = [0]

    def on_message(client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        tables = rows_of[bytes(message.payload)]
        with engine.begin() as connection:
            for table, (columns, rows) in tables.items():
                if rows:
                    names = ", ".join(f'"{c}"' for c in columns)
                    marks = ", ".join("?" for _ in columns)
                    connection.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING', rows)
        stored[0] += len(tables["events"][1])
        if stored[0] >= total:
            done.set()

    return _timed_subscriber(port, work, on_message, done)


def _timed_subscriber(port: int, work: list[tuple[str, bytes, int]], on_message, done: threading.Event) -> float:  # type: ignore[no-untyped-def]
    total = sum(n for _, _, n in work)
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", port)
    subscriber.subscribe("vardkoll/v1/+/+/events", qos=1)
    subscriber.loop_start()
    time.sleep(0.5)
    started = time.perf_counter()
    publish_all(port, work)
    done.wait(600)
    elapsed = time.perf_counter() - started
    subscriber.loop_stop()
    subscriber.disconnect()
    return total / elapsed


def run_vardkoll(port: int, url: str, work: list[tuple[str, bytes, int]]) -> float:
    settings = ServerSettings(database_url=url, mqtt_url=f"mqtt://127.0.0.1:{port}", dev=True)
    services = build_services(settings)
    consumer = MqttConsumer(services, client_id="bench-server")
    consumer.start()
    consumer.connected.wait(10)
    total = sum(n for _, _, n in work)
    acknowledged = [0]
    done = threading.Event()

    def on_ack(client, userdata, message) -> None:  # type: ignore[no-untyped-def]
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
    done.wait(600)
    elapsed = time.perf_counter() - started
    listener.loop_stop()
    consumer.stop()
    return total / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    broker = start_broker()
    if broker.kind != "mosquitto":
        print("this benchmark needs the mosquitto binary", file=sys.stderr)
        return 2
    work = batches(args.events, args.batch)
    folder = Path(tempfile.mkdtemp(prefix="vardkoll-bench-"))
    base_url = args.database_url or f"sqlite:///{folder / 'baseline.db'}"
    same_url = f"sqlite:///{folder / 'same-rows.db'}"
    ours_url = args.database_url or f"sqlite:///{folder / 'vardkoll.db'}"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        baseline = run_baseline(broker.port, base_url, work)
        same = run_same_rows_baseline(broker.port, same_url, work) if same_url.startswith("sqlite") else float("nan")
        ours = run_vardkoll(broker.port, ours_url, work)
    finally:
        broker.stop()
    events = sum(n for _, _, n in work)
    print(f"events {events:,} in batches of {args.batch}, database {'SQLite' if 'sqlite' in ours_url else 'PostgreSQL'}, cpus {os.cpu_count()}, load average before {load}")
    print(f"bare paho + executemany, events only: {baseline:,.0f} events/s   vardkoll/this {ours / baseline:.2f}")
    print(f"bare paho + executemany, same rows:   {same:,.0f} events/s   vardkoll/this {ours / same:.2f}")
    print(f"vardkoll ingest:                      {ours:,.0f} events/s")
    print(f"goal >= 20,000 events/s: {'met' if ours >= 20_000 else 'NOT met'}; goal >= 0.5 of the same-rows subscriber: {'met' if ours / same >= 0.5 else 'NOT met'} ({ours / same:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
