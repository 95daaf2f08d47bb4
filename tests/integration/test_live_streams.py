"""Open live streams hold no database connection while they wait (issue 12, item 3).

20 streams once exhausted the PostgreSQL pool (10 + 10): other requests failed with 500 after 30–55 s
and MQTT acknowledgements stalled. Here 30 streams stay open on a real server with the default pool,
and a plain API call and an MQTT batch's acknowledgement still come back at once.
"""

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
from vardkoll.protocol.topics import ack_topic, events_topic
from vardkoll.server.app import create_app
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow

from .mqtt_helpers import AckListener, wait_until

UNIT = "SE2321000016-VC01"
TOKEN = "live-test-Admin-token-0123456789"
STREAMS = 30


@pytest.fixture
def running_server(postgres_database_url, mosquitto):
    settings = ServerSettings(database_url=postgres_database_url, mqtt_url=mosquitto.url, admin_token=TOKEN, dev=True)
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
    server.force_exit = True  # without waiting for the open streams to end: they only end at their next line
    thread.join(15)
    services.engine.dispose()


def test_thirty_open_live_streams_block_neither_the_api_nor_mqtt_acks(running_server, mosquitto):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    opened, stop = threading.Semaphore(0), threading.Event()

    def watch() -> None:
        try:
            with httpx.stream("GET", f"{running_server}/api/v1/live", params={"unit": UNIT}, headers=headers, timeout=60) as response:
                for line in response.iter_lines():
                    if line.startswith("event: figures"):
                        opened.release()
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            if not stop.is_set():  # after the test the server closes the streams it is still holding
                raise

    watchers = [threading.Thread(target=watch, daemon=True) for _ in range(STREAMS)]
    for watcher in watchers:
        watcher.start()
    try:
        for _ in range(STREAMS):
            assert opened.acquire(timeout=60), "a stream did not start"
        started = time.monotonic()
        response = httpx.get(f"{running_server}/api/v1/units", headers=headers, timeout=60)
        answered_s = time.monotonic() - started
        assert response.status_code == 200 and answered_s < 2, f"{response.status_code} after {answered_s:.1f} s"

        listener = AckListener(mosquitto.port, ack_topic(UNIT, "dev-live"))
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        event = {"v": 1, "id": "live-1", "type": "call.offered", "unit": UNIT, "at": "2026-03-02T09:00:00+01:00", "call": "call-live1"}
        started = time.monotonic()
        publisher.publish(events_topic(UNIT, "dev-live"), orjson.dumps({"device": "dev-live", "events": [event]}), qos=1)
        assert wait_until(lambda: listener.acks, 10)
        acked_s = time.monotonic() - started
        publisher.loop_stop()
        assert listener.acks[0]["committed"] == ["live-1"] and acked_s < 2, f"acknowledged after {acked_s:.1f} s"
    finally:
        stop.set()
