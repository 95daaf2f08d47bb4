"""Poison events and batches (issue 12, item 4): a bad event is refused with a reason and never fails,
delays or drops another event or another device's batch; an error that is not transient dead-letters
the one bad event instead of being retried forever. Real Mosquitto, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select, text

from vardkoll.protocol.topics import ack_topic, events_topic
from vardkoll.server.services import Services, build_consumer, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.tables import DeadLetter, StoredEvent, UnitActivity

from .mqtt_helpers import AckListener, wait_until

UNIT, OTHER = "SE2321000016-VC01", "SE2321000016-VC02"


def offered(event_id: str, unit: str = UNIT, at: str = "2026-03-02T08:00:00+01:00", **fields) -> dict:
    return {"v": 1, "id": event_id, "type": "call.offered", "unit": unit, "at": at, "call": f"call-{event_id}", **fields}


@pytest.fixture
def server(database_url, mosquitto):
    services = build_services(ServerSettings(database_url=database_url, mqtt_url=mosquitto.url, dev=True), apply_migrations=True)
    consumer = build_consumer(services, client_id="test-server")
    consumer.start()
    assert consumer.connected.wait(10)
    yield services
    consumer.stop()
    services.engine.dispose()


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, unit: str, device: str, events: list[dict], retain: bool = False) -> None:
        payload = orjson.dumps({"device": device, "events": events})
        self.client.publish(events_topic(unit, device), payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stored_ids(services: Services) -> set[str]:
    with services.sessions() as session:
        return set(session.scalars(select(StoredEvent.event_id)))


def test_an_event_at_year_9999_is_rejected_alone_and_other_devices_batches_commit(server, mosquitto):
    """It overflowed the local date: the whole commit group failed, no ack, no dead letter."""
    devices = [(UNIT, "dev-a"), (OTHER, "dev-b"), (UNIT, "dev-c")]
    listeners = {device: AckListener(mosquitto.port, ack_topic(unit, device)) for unit, device in devices}
    publisher = Publisher(mosquitto.port)
    try:
        senders = []
        for n, (unit, device) in enumerate(devices):
            events = [offered(f"{device}-{i}", unit) for i in range(3)]
            if n == 0:
                events.insert(1, offered("far-future", unit, at="9999-12-31T23:59:59Z"))
            senders.append(threading.Thread(target=publisher.send, args=(unit, device, events)))
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        assert wait_until(lambda: all(listener.acks for listener in listeners.values()), 10), {d: heard.acks for d, heard in listeners.items()}
    finally:
        publisher.close()
    first = listeners["dev-a"].acks[0]
    assert sorted(first["committed"]) == ["dev-a-0", "dev-a-1", "dev-a-2"]
    assert [r["id"] for r in first["rejected"]] == ["far-future"] and "'at'" in first["rejected"][0]["reason"]
    assert stored_ids(server) == {f"{d}-{i}" for _, d in devices for i in range(3)}
    with server.sessions() as session:
        assert session.scalar(select(DeadLetter.reason).where(DeadLetter.event_id == "far-future"))


def test_at_outside_the_plausible_window_is_refused_and_never_moves_the_latest_event(server, mosquitto):
    listener = AckListener(mosquitto.port, ack_topic(UNIT, "dev-a"))
    publisher = Publisher(mosquitto.port)
    now = datetime.now(timezone.utc)
    ahead = (now + timedelta(hours=25)).isoformat()
    within = (now + timedelta(hours=1)).isoformat()
    try:
        publisher.send(UNIT, "dev-a", [offered("ok", at=within), offered("ahead", at=ahead), offered("old", at="1999-12-31T23:59:59+00:00")])
        assert wait_until(lambda: listener.acks, 10)
    finally:
        publisher.close()
    ack = listener.acks[0]
    assert ack["committed"] == ["ok"]
    reasons = {r["id"]: r["reason"] for r in ack["rejected"]}
    assert set(reasons) == {"ahead", "old"} and all("'at'" in reason for reason in reasons.values())
    with server.sessions() as session:
        latest = session.scalar(select(UnitActivity.last_event_at_us).where(UnitActivity.unit == UNIT))
    assert latest == int(datetime.fromisoformat(within).timestamp() * 1_000_000)


def test_a_topic_with_a_unit_too_long_for_the_database_is_refused_and_blocks_nobody(server, mosquitto):
    """A 43-character unit made every later commit fail on PostgreSQL (StringDataRightTruncation)."""
    long_unit = "SE2321000016-" + "X" * 30
    bad_listener = AckListener(mosquitto.port, ack_topic(long_unit, "dev-x"))
    good_listener = AckListener(mosquitto.port, ack_topic(OTHER, "dev-b"))
    publisher = Publisher(mosquitto.port)
    try:
        publisher.send(long_unit, "dev-x", [offered("long-1", long_unit)])
        publisher.send(OTHER, "dev-b", [offered("good-1", OTHER)])
        assert wait_until(lambda: good_listener.acks and bad_listener.acks, 10), (good_listener.acks, bad_listener.acks)
    finally:
        publisher.close()
    assert good_listener.acks[0]["committed"] == ["good-1"]
    assert "unit" in bad_listener.acks[0]["batch_refused"]
    with server.sessions() as session:
        assert session.scalar(select(DeadLetter.reason).where(DeadLetter.reason.contains("topic")))


def test_counts_are_bounded_and_an_oversized_event_is_refused_on_the_fast_path(server, mosquitto):
    snapshot = {"v": 1, "type": "listing.snapshot", "unit": UNIT, "at": "2026-03-02T08:00:00+01:00", "named_doctor": 1}
    events = [
        {**snapshot, "id": "huge-listed", "listed": 2**63},
        {**snapshot, "id": "over-bound", "listed": 10_000_001},
        {**snapshot, "id": "fine", "listed": 10_000_000},
        offered("bloated", padding="x" * (3 << 20)),
        offered("small"),
    ]
    listener = AckListener(mosquitto.port, ack_topic(UNIT, "dev-a"))
    publisher = Publisher(mosquitto.port)
    try:
        publisher.send(UNIT, "dev-a", events)
        assert wait_until(lambda: listener.acks, 10)
    finally:
        publisher.close()
    ack = listener.acks[0]
    assert sorted(ack["committed"]) == ["fine", "small"]
    reasons = {r["id"]: r["reason"] for r in ack["rejected"]}
    assert set(reasons) == {"huge-listed", "over-bound", "bloated"}, ack
    assert "larger than" in reasons["bloated"] and "listed" in reasons["over-bound"]


@pytest.mark.postgresql
def test_a_database_error_that_is_not_transient_dead_letters_only_the_bad_event(postgres_database_url, mosquitto):
    """A real refusal by the database (a CHECK the test adds): retried forever for all devices before."""
    services = build_services(ServerSettings(database_url=postgres_database_url, mqtt_url=mosquitto.url, dev=True), apply_migrations=True)
    with services.engine.begin() as connection:
        connection.execute(text("ALTER TABLE events ADD CONSTRAINT test_poison CHECK (event_id <> 'poison')"))
    consumer = build_consumer(services, client_id="test-server")
    consumer.start()
    assert consumer.connected.wait(10)
    devices = [(UNIT, "dev-a"), (OTHER, "dev-b"), (UNIT, "dev-c")]
    listeners = {device: AckListener(mosquitto.port, ack_topic(unit, device)) for unit, device in devices}
    publisher = Publisher(mosquitto.port)
    try:
        for n, (unit, device) in enumerate(devices):
            events = [offered(f"{device}-{i}", unit) for i in range(4)]
            if n == 1:
                events.insert(2, offered("poison", unit))
            publisher.send(unit, device, events)
        assert wait_until(lambda: all(listener.acks for listener in listeners.values()), 10), {d: heard.acks for d, heard in listeners.items()}
    finally:
        publisher.close()
        consumer.stop()
    poisoned = listeners["dev-b"].acks[0]
    assert sorted(poisoned["committed"]) == [f"dev-b-{i}" for i in range(4)]
    assert [r["id"] for r in poisoned["rejected"]] == ["poison"] and "database" in poisoned["rejected"][0]["reason"]
    assert stored_ids(services) == {f"{d}-{i}" for _, d in devices for i in range(4)}
    with services.sessions() as session:
        assert session.scalar(select(DeadLetter.reason).where(DeadLetter.event_id == "poison"))
    services.engine.dispose()


def test_a_retained_batch_is_refused_once_and_not_taken_again_on_reconnect(database_url, mosquitto):
    services = build_services(ServerSettings(database_url=database_url, mqtt_url=mosquitto.url, dev=True), apply_migrations=True)
    listener = AckListener(mosquitto.port, ack_topic(UNIT, "dev-r"))
    publisher = Publisher(mosquitto.port)
    try:
        consumer = build_consumer(services, client_id="test-server")
        consumer.start()
        assert consumer.connected.wait(10)
        publisher.send(UNIT, "dev-r", [offered("kept-1")], retain=True)
        assert wait_until(lambda: listener.acks, 10)
        consumer.stop()
        consumer = build_consumer(services, client_id="test-server-2")  # a new session subscribes afresh
        consumer.start()
        assert consumer.connected.wait(10)
        assert not wait_until(lambda: len(listener.acks) > 1, 3), listener.acks
        consumer.stop()
    finally:
        publisher.close()
    assert "retain" in listener.acks[0]["batch_refused"]
    assert stored_ids(services) == set()
    with services.sessions() as session:
        assert len(session.scalars(select(DeadLetter)).all()) == 1
    services.engine.dispose()
