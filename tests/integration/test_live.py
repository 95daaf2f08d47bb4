"""An event published over MQTT reaches an open live stream (server-sent events) promptly."""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from support import free_port
from vardkoll.demo.broker import wait_for_port
from vardkoll.protocol.topics import events_topic
from vardkoll.server.app import create_app
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow

UNIT = "SE2321000016-VC01"
TOKEN = "live-test-Admin-token-0123456789"


@pytest.fixture
def running_server(tmp_path, mosquitto):
    settings = ServerSettings(database_url=f"sqlite:///{tmp_path / 'live.db'}", mqtt_url=mosquitto.url, admin_token=TOKEN, dev=True)
    services = build_services(settings, apply_migrations=True)
    with services.sessions.begin() as session:
        session.add(UnitRow(unit=UNIT, name="Vårdcentralen Test", region="Region Test"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, 30)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


def _figures(lines) -> list[dict]:
    """The data of the next `figures` event on the stream."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "figures":
            return orjson.loads(line[6:])
    raise AssertionError("the stream ended")


def test_a_published_event_changes_the_live_figure_within_seconds(running_server, mosquitto):
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    params = {"unit": UNIT, "metric": "telephone", "from": "2026-03-02", "to": "2026-03-02"}
    with httpx.stream("GET", f"{running_server}/api/v1/live", params=params, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        before = _figures(lines)[0]
        assert before["denominator"] == 0 and before["data"]["no_data"] is True
        event = {"v": 1, "id": "live-1", "type": "call.offered", "unit": UNIT, "at": "2026-03-02T09:00:00+01:00", "call": "call-live1"}
        started = time.monotonic()
        publisher.publish(events_topic(UNIT, "dev-live"), orjson.dumps({"device": "dev-live", "events": [event]}), qos=1)
        after = _figures(lines)[0]
        elapsed = time.monotonic() - started
    publisher.loop_stop()
    assert after["denominator"] == 1 and after["data"]["no_data"] is False
    assert elapsed < 5, f"the live figure took {elapsed:.1f} s"


def test_the_live_stream_needs_a_token_and_the_right_scope(running_server):
    assert httpx.get(f"{running_server}/api/v1/live", params={"unit": UNIT}).status_code == 401
    response = httpx.get(f"{running_server}/api/v1/live", params={"unit": UNIT, "region": "Region Test"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422


def test_a_clinic_manager_cannot_watch_another_unit(running_server):
    admin = {"Authorization": f"Bearer {TOKEN}"}
    created = httpx.post(f"{running_server}/api/v1/tokens", json={"name": "other", "role": "clinic_manager", "unit": "SE2321000016-VC99"}, headers=admin)
    assert created.status_code == 201
    other = {"Authorization": f"Bearer {created.json()['token']}"}
    assert httpx.get(f"{running_server}/api/v1/live", params={"unit": UNIT}, headers=other).status_code == 403
