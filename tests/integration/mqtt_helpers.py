"""Small MQTT helpers for integration tests."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def wait_until(condition: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return condition()


class AckListener:
    """Collects the server's acknowledgements on a topic."""

    def __init__(self, port: int, topic: str) -> None:
        self.acks: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic, qos=1)
        self._client.loop_start()
        subscribed.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.acks.append(orjson.loads(message.payload))


def pump(collectors, done: Callable[[], bool], timeout_s: float) -> bool:
    """Let simulated collectors re-send what is unacknowledged, as a collector's outbox does, until `done`."""

    def step() -> bool:
        for collector in collectors:
            collector.flush()
        return done()

    return wait_until(step, timeout_s, every_s=0.5)
