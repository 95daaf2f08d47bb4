"""Events published through a real Mosquitto are counted exactly once: figures equal replay's."""

from __future__ import annotations

import json
import random
from datetime import date, datetime

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from conftest import scenario_files
from support.memory_collector import DemoCollector
from vardkoll.protocol.topics import ack_topic, events_topic
from vardkoll.server.metrics import Period
from vardkoll.server.services import build_consumer, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.tables import DeadLetter, StoredEvent

from .mqtt_helpers import AckListener, pump, wait_until

SCENARIOS = [p for p in scenario_files() if "bad-input" not in p.name]


def _services(database_url: str, broker) -> object:
    return build_services(ServerSettings(database_url=database_url, mqtt_url=broker.url, dev=True), apply_migrations=True)


@pytest.fixture
def server(database_url, mosquitto):
    services = _services(database_url, mosquitto)
    consumer = build_consumer(services, client_id="test-server")
    consumer.start()
    assert consumer.connected.wait(10)
    yield services
    consumer.stop()


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_scenario_through_mosquitto_in_shuffled_batches_some_twice_equals_replay(expected_path, server, mosquitto):
    events_path = expected_path.with_name(expected_path.name.replace(".expected.json", ".jsonl"))
    scenario = json.loads(expected_path.read_text())
    events = [orjson.loads(line) for line in events_path.read_bytes().splitlines() if line.strip()]
    rng = random.Random(expected_path.name)
    rng.shuffle(events)
    events += rng.sample(events, len(events) // 3)  # some sent twice
    collectors = {}
    for event in events:
        unit = event["unit"]
        if unit not in collectors:
            collectors[unit] = DemoCollector(unit, f"dev-{unit[-4:].lower()}", mosquitto.port, True, resend_after_s=5, batch_events=3)
            collectors[unit].start()
    for unit, collector in collectors.items():
        collector.send([e for e in events if e["unit"] == unit])
    assert pump(collectors.values(), lambda: all(c.waiting == 0 for c in collectors.values()), 60)
    for collector in collectors.values():
        collector.stop()
    args = scenario["replay_args"]
    period = Period(date.fromisoformat(args["from"]), date.fromisoformat(args["to"]))
    as_of = datetime.fromisoformat(args["as_of"]) if "as_of" in args else None
    for expected in scenario["expected"]["results"]:
        figure = server.figures.figure(expected["unit"], expected["metric"], period, as_of)
        figure.pop("definition_version"), figure.pop("data")
        assert figure == expected


def test_bad_payloads_are_refused_with_reasons_and_nothing_valid_is_lost(server, mosquitto):
    unit, device = "SE2321000016-VC01", "dev-bad"
    good = {"v": 1, "id": "good-1", "type": "call.offered", "unit": unit, "at": "2026-03-02T08:00:00+01:00", "call": "call-good1"}
    payloads = [
        b"not json at all",
        orjson.dumps({"device": device, "events": [{"v": 1, "id": "x1", "type": "call.offered", "unit": unit}]}),
        orjson.dumps({"device": device, "events": [{**good, "id": "pn-1", "queue": "ring 19121212-1212"}]}),
        orjson.dumps({"device": device, "events": [{**good, "id": "other-unit", "unit": "SE2321000016-VC02"}]}),
        b'{"device": "dev-bad", "events": [' + b"[" * 100_000 + b"]}",
        orjson.dumps({"device": device, "events": [good, {**good, "id": "good-2", "call": "call-good2"}]}),
        b"x" * (5 << 20),  # oversized
    ]
    listener = AckListener(mosquitto.port, ack_topic(unit, device))
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    for payload in payloads:
        publisher.publish(events_topic(unit, device), payload, qos=1).wait_for_publish(10)
    assert wait_until(lambda: len(listener.acks) == len(payloads), 30), listener.acks
    publisher.loop_stop()
    acks = listener.acks
    refused = [a["batch_refused"] for a in acks if a["batch_refused"]]
    rejected = [r["reason"] for a in acks for r in a["rejected"]]
    committed = [i for a in acks for i in a["committed"]]
    assert sorted(committed) == ["good-1", "good-2"]
    assert any("not valid JSON" in r for r in refused) and any("over the limit" in r for r in refused)
    assert any("missing field" in r for r in rejected)
    assert any("personal identity number" in r for r in rejected) and not any("1212" in r for r in rejected + refused)
    assert any("SE2321000016-VC02" in r for r in rejected)
    with server.sessions() as session:
        letters = session.scalars(select(DeadLetter)).all()
        assert len(letters) >= 6 and all(letter.reason for letter in letters)
        assert not any("19121212" in (letter.reason or "") for letter in letters)
        assert session.scalar(select(func.count()).select_from(StoredEvent)) == 2


def test_outside_dev_mode_only_registered_devices_may_publish(database_url, mosquitto):
    from vardkoll.server.storage.registry_tables import DeviceRow

    services = build_services(ServerSettings(database_url=database_url, mqtt_url=mosquitto.url, admin_token="a" * 32, dev=False), apply_migrations=True)
    consumer = build_consumer(services, client_id="test-server-prod")
    consumer.start()
    assert consumer.connected.wait(10)
    unit, device = "SE2321000016-VC01", "pi-new"
    event = {"v": 1, "id": "reg-1", "type": "call.offered", "unit": unit, "at": "2026-03-02T08:00:00+01:00", "call": "call-reg1"}
    listener = AckListener(mosquitto.port, ack_topic(unit, device))
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    try:
        publisher.publish(events_topic(unit, device), orjson.dumps({"device": device, "events": [event]}), qos=1).wait_for_publish(10)
        assert wait_until(lambda: len(listener.acks) == 1, 15)
        assert "not registered" in listener.acks[0]["batch_refused"]
        with services.sessions.begin() as session:
            session.add(DeviceRow(unit=unit, device=device, registered_at=datetime.now().astimezone()))
        publisher.publish(events_topic(unit, device), orjson.dumps({"device": device, "events": [event]}), qos=1).wait_for_publish(10)
        assert wait_until(lambda: len(listener.acks) == 2, 15)
        assert listener.acks[1]["committed"] == ["reg-1"]
    finally:
        publisher.loop_stop()
        consumer.stop()
