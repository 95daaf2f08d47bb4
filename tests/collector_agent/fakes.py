"""A fake paho client and a hand-driven clock for publisher tests."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import orjson


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Published:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return orjson.loads(self.payload)


class FakeMqttClient:
    """Records what is published; the test plays the broker (connect, PUBACK) and the server (ack)."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.subscriptions: list[tuple[str, int]] = []
        self.will: Published | None = None
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.on_connect: Any = None
        self.on_disconnect: Any = None
        self.on_publish: Any = None
        self.started = self.stopped = self.disconnected = False

    def will_set(self, topic, payload, qos, retain):
        self.will = Published(topic, payload, qos, retain)

    def message_callback_add(self, topic, callback):
        self.callbacks[topic] = callback

    def subscribe(self, topic, qos):
        self.subscriptions.append((topic, qos))

    def publish(self, topic, payload, qos, retain=False):
        self.published.append(Published(topic, bytes(payload), qos, retain))
        return SimpleNamespace(rc=0, mid=len(self.published))

    def connect_async(self, host, port, keepalive):
        self.address = (host, port, keepalive)

    def loop_start(self):
        self.started = True

    def loop_stop(self):
        self.stopped = True

    def disconnect(self):
        self.disconnected = True

    # -- the test plays the broker ---------------------------------------------------------------------
    def connect(self) -> None:
        self.on_connect(self, None, {}, SimpleNamespace(is_failure=False), None)

    def drop(self) -> None:
        self.on_disconnect(self, None, {}, SimpleNamespace(is_failure=True), None)

    def puback_all(self) -> None:
        """The broker confirms it has the messages: this must delete nothing."""
        if self.on_publish is not None:
            for mid, _ in enumerate(self.published, 1):
                self.on_publish(self, None, mid, SimpleNamespace(is_failure=False), None)

    def deliver(self, topic: str, payload: bytes) -> None:
        self.callbacks[topic](self, None, SimpleNamespace(topic=topic, payload=payload))

    def batches(self, topic_suffix: str = "/events") -> list[Published]:
        return [p for p in self.published if p.topic.endswith(topic_suffix)]
