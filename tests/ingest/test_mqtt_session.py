"""The server's MQTT session outlives a restart but not a scale-down: it connects without a clean
start and asks the broker to keep its session 60 seconds by default (it was 24 h, which kept a dead
process's share of the shared subscription for a day). What the broker does when the session expires
is `tests/integration/test_server_crash.py`'s scale-down test, against a real Mosquitto."""

from __future__ import annotations

from typing import Any

from vardkoll.server.ingest.mqtt_consumer import MqttConsumer
from vardkoll.server.settings import ServerSettings


def connect_of(settings: ServerSettings) -> dict[str, Any]:
    consumer = MqttConsumer(settings, ingest=None, devices=None, client_id="vardkoll-server-test-1")  # type: ignore[arg-type]  # only the connection is made
    asked: dict[str, Any] = {}
    consumer._client.connect_async = lambda host, port, **options: asked.update(host=host, port=port, **options)  # type: ignore[method-assign]  # the broker is not reached
    consumer._connect()
    return asked


def test_by_default_the_session_survives_a_restart_and_expires_after_a_minute():
    asked = connect_of(ServerSettings(mqtt_url="mqtt://127.0.0.1:1883"))
    assert asked["clean_start"] is False
    assert asked["properties"].SessionExpiryInterval == 60


def test_the_session_expiry_is_a_setting():
    asked = connect_of(ServerSettings(mqtt_url="mqtt://127.0.0.1:1883", mqtt_session_expiry_s=5))
    assert asked["properties"].SessionExpiryInterval == 5
