"""Unicode variants of a personal number and hostile heartbeats through the real paths: a real
Mosquitto with the MQTT consumer, and `vardkoll replay` (issue 12, items 5 and 6). HTTP ingest:
tests/api/test_api_events.py. The property tests on the guard itself: tests/protocol/test_hostile_input.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from support.number_variants import ISSUE_FORMS
from vardkoll.protocol.topics import ack_topic, events_topic, status_topic

from vardkoll.server.ingest.mqtt_consumer import MqttConsumer
from vardkoll.server.services import Services, build_consumer, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import DeviceRow
from vardkoll.server.storage.tables import DeadLetter, StoredEvent
from vardkoll.server.web.views import installation_view

from .mqtt_helpers import AckListener, wait_until

UNIT, DEVICE = "SE2321000016-VC01", "pi-hostile"


def offered(event_id: str, **extra: object) -> dict:
    return {"v": 1, "id": event_id, "type": "call.offered", "unit": UNIT, "at": "2026-03-02T08:00:00+01:00", "call": f"c-{event_id}"} | extra


@pytest.fixture
def server(database_url, mosquitto):
    services = build_services(ServerSettings(database_url=database_url, mqtt_url=mosquitto.url, dev=True), apply_migrations=True)
    consumer = build_consumer(services, client_id="test-hostile")
    consumer.start()
    assert consumer.connected.wait(10)
    yield services, consumer
    consumer.stop()


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_variants_over_mqtt_are_refused_with_reasons_and_stored_nowhere(server, mosquitto):
    services, _ = server
    bad = [offered(f"pn-{index}", queue=f"ring {text}") for index, text in enumerate(ISSUE_FORMS)]
    listener = AckListener(mosquitto.port, ack_topic(UNIT, DEVICE))
    client = publisher(mosquitto.port)
    batch = json.dumps({"device": DEVICE, "events": [*bad, offered("fine")]}, ensure_ascii=False).encode()
    client.publish(events_topic(UNIT, DEVICE), batch, qos=1).wait_for_publish(10)
    assert wait_until(lambda: len(listener.acks) == 1, 30)
    client.loop_stop()
    ack = listener.acks[0]
    assert ack["committed"] == ["fine"] and len(ack["rejected"]) == len(ISSUE_FORMS)
    assert all("personal identity number" in r["reason"] for r in ack["rejected"])
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StoredEvent)) == 1
        letters = [repr(letter.__dict__) for letter in session.scalars(select(DeadLetter))]
    assert len(letters) == len(ISSUE_FORMS) and not any("ring" in text for text in letters)


def test_variants_in_an_archive_are_rejected_by_replay(tmp_path: Path):
    archive = tmp_path / "events.jsonl"
    lines = [json.dumps(offered(f"pn-{index}", queue=text), ensure_ascii=ascii_only) for index, text in enumerate(ISSUE_FORMS) for ascii_only in (False, True)]
    archive.write_text("\n".join([json.dumps(offered("fine")), *lines]) + "\n", encoding="utf-8")
    exe = shutil.which("vardkoll", path=str(Path(sys.executable).parent)) or "vardkoll"
    done = subprocess.run([exe, "replay", str(archive)], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert [r["line"] for r in result["rejected"]] == list(range(2, 2 + len(lines)))
    assert all(r["error"].startswith("contains a personal identity number") for r in result["rejected"])
    telephone = next(f for f in result["results"] if f["metric"] == "telephone")
    assert telephone["denominator"] == 1  # the one clean call


def retained_status(port: int, payload: bytes) -> None:
    client = publisher(port)
    client.publish(status_topic(UNIT, DEVICE), payload, qos=1, retain=True).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def stored_status(services: Services) -> tuple[str | None, str | None]:
    with services.sessions() as session:
        row = session.get(DeviceRow, (UNIT, DEVICE))
        return (row.status, row.last_status) if row else (None, None)


def test_a_heartbeat_keeps_only_its_known_fields_and_one_with_a_personal_number_is_refused(server, mosquitto):
    services, consumer = server
    beat = {
        "status": "online",
        "device": DEVICE,
        "version": "1.4.2",
        "at": "2026-11-23T14:05:00+01:00",
        "outbox": {"depth": 3, "oldest_at": None, "note": "<script>alert(1)</script>"},
        "clock": {"ntp_synced": True, "state": "ok", "reason": "<script>alert(2)</script>"},
        "phone": "070-123 45 67",
        "patient": "<script>alert(3)</script>",
        "notes": ["ring 08-123 456 78"],
    }
    retained_status(mosquitto.port, orjson.dumps(beat))
    assert wait_until(lambda: stored_status(services)[1] is not None, 20)
    status, stored = stored_status(services)
    kept = orjson.loads(stored or "null")
    assert status == "online"
    assert kept == {
        "status": "online",
        "device": DEVICE,
        "version": "1.4.2",
        "at": "2026-11-23T14:05:00+01:00",
        "outbox": {"depth": 3, "oldest_at": None},
        "clock": {"ntp_synced": True, "state": "ok", "reason": "<script>alert(2)</script>"},
    }
    # The one known free-text field keeps its text; pages escape it (tests/web). Nothing unknown is kept.
    assert "070" not in stored and "08-123" not in stored and "alert(1)" not in stored and "alert(3)" not in stored
    with services.sessions() as session:
        view = installation_view(session, UNIT)
    assert [(d.device, d.outbox_depth, d.clock, d.version) for d in view] == [(DEVICE, 3, "synced", "1.4.2")]

    for text in ("121212\u200b-1212", "１９１２１２１２－１２１２", "12 12 12 - 1212"):
        refused_before = consumer_refusals(consumer)
        hostile = {**beat, "outbox": {"depth": 99}, "config": {"state": "refused", "rejected": {"version": "2", "reason": f"ring {text}"}}}
        retained_status(mosquitto.port, json.dumps(hostile, ensure_ascii=False).encode())
        assert wait_until(lambda: consumer_refusals(consumer) == refused_before + 1, 20)
        assert stored_status(services)[1] == stored  # nothing of it kept: the last good heartbeat stands
    retained_status(mosquitto.port, b"offline")
    assert wait_until(lambda: stored_status(services)[0] == "offline", 20)


def consumer_refusals(consumer: MqttConsumer) -> int:
    return consumer._devices.statuses_refused  # the registry the consumer records statuses with
