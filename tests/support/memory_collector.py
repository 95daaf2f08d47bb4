"""A collector stand-in for the server's integration tests: it publishes batches over MQTT exactly as the
protocol asks (status with a last will, batches on the events topic, keep everything until the server's
committed acknowledgement) but keeps its outbox in memory. (It was the demo's, before the demo ran the
real collector, `vardkoll/demo/edge.py`.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vardkoll.protocol.topics import DEFAULT_PREFIX, ack_topic, events_topic, status_topic

BATCH_EVENTS = 500
RESEND_AFTER_S = 10.0


class DemoCollector:
    def __init__(
        self,
        unit: str,
        device: str,
        port: int,
        mqtt_v5: bool,
        prefix: str = DEFAULT_PREFIX,
        resend_after_s: float = RESEND_AFTER_S,
        batch_events: int = BATCH_EVENTS,
    ) -> None:
        self.unit, self.device = unit, device
        self._resend_after_s = resend_after_s
        self._batch_events = batch_events
        self._prefix = prefix
        self._lock = threading.Lock()
        self._outbox: dict[str, dict[str, Any]] = {}  # event id -> event, until acknowledged
        self._sent_at: dict[str, float] = {}
        self.acknowledged = 0
        self.refused = 0
        protocol = mqtt.MQTTv5 if mqtt_v5 else mqtt.MQTTv311
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-{device}", protocol=protocol)
        self._client.will_set(status_topic(unit, device, prefix), b"offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._ready.set()
        self._ready = threading.Event()
        self._client.message_callback_add(ack_topic(unit, device, prefix), self._on_ack)
        self._client.connect("127.0.0.1", port, keepalive=30)

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect and wait until the ack topic is subscribed: an ack sent before that would be lost."""
        self._client.loop_start()
        self._ready.wait(timeout_s)

    def stop(self) -> None:
        if self._client.is_connected():
            self._client.publish(status_topic(self.unit, self.device, self._prefix), b"offline", qos=1, retain=True).wait_for_publish(5)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(ack_topic(self.unit, self.device, self._prefix), qos=1)
        status = {"status": "online", "version": "demo", "outbox": len(self._outbox), "clock": "synced"}
        client.publish(status_topic(self.unit, self.device, self._prefix), orjson.dumps(status), qos=1, retain=True)

    def _on_ack(self, client, userdata, message) -> None:
        ack = orjson.loads(message.payload)
        done = list(ack.get("committed", [])) + [r["id"] for r in ack.get("rejected", []) if r.get("id")]
        with self._lock:
            for event_id in done:
                if self._outbox.pop(event_id, None) is not None:
                    self._sent_at.pop(event_id, None)
            self.acknowledged += len(ack.get("committed", []))
            self.refused += len(ack.get("rejected", []))

    def send(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            for event in events:
                self._outbox[event["id"]] = event
        self.flush()

    def flush(self) -> None:
        """Publish whatever is not acknowledged and not in flight (or in flight for too long)."""
        now = time.monotonic()
        with self._lock:
            due = [e for i, e in self._outbox.items() if now - self._sent_at.get(i, float("-inf")) >= self._resend_after_s]
            for event in due:
                self._sent_at[event["id"]] = now
        for start in range(0, len(due), self._batch_events):
            batch = {"device": self.device, "events": due[start : start + self._batch_events]}
            self._client.publish(events_topic(self.unit, self.device, self._prefix), orjson.dumps(batch), qos=1)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._outbox)
