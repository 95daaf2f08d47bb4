"""Send the outbox to the broker and delete only what the server acknowledges as committed (SPEC 3.3).

- paho-mqtt 2, MQTT v5, client id = device id, TLS and username/password from the config; paho's
  network thread reconnects on its own (`connect_async` + `loop_start`).
- Status: retained JSON heartbeats on `{prefix}/{unit}/{device}/status`, with the last will `offline`.
- Events: batches `{"device", "events": [...]}` on `.../events`, QoS 1, oldest first. A PUBACK means only
  that the broker has the message; events are deleted when the acknowledgement on `.../ack` lists them.
- Flow control: at most `max_inflight_batches` unacknowledged batches; a batch without an
  acknowledgement is sent again after `resend_after_s`, doubling per attempt. After every (re)connect
  the drain waits a random `0..start_jitter_s` and then runs through a token bucket of
  `max_events_per_s`, so a region whose clinics all reconnect at once does not stampede the server.
- Seams: the MQTT client, the monotonic clock, the wall clock, the random source and the NTP probe are
  passed in; `tick()` does the work and is called by the agent's loop (or a test).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

import orjson

from vardkoll.protocol.personal_number import contains_personal_number
from vardkoll.protocol.topics import ack_topic, config_topic, device_client_id, events_topic, status_topic

from .clock import ntp_synchronised
from .config import MqttConfig, PublisherConfig
from .outbox import Outbox, OutboxRow

log = logging.getLogger("vardkoll.collector.publisher")

OFFLINE = b"offline"


class MqttClient(Protocol):
    """The part of paho's `Client` the publisher uses (a fake implements it in tests)."""

    on_connect: Any
    on_disconnect: Any

    def will_set(self, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...
    def message_callback_add(self, topic: str, callback: Callable[..., None]) -> None: ...
    def subscribe(self, topic: str, qos: int) -> Any: ...
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> Any: ...
    def connect_async(self, host: str, port: int, keepalive: int) -> None: ...
    def loop_start(self) -> Any: ...
    def loop_stop(self) -> Any: ...
    def disconnect(self) -> Any: ...


def make_paho_client(unit: str, device: str, mqtt: MqttConfig) -> MqttClient:
    """The client id is `{unit}/{device}`: the broker account the server makes is bound to it."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    protocol = paho.MQTTv311 if mqtt.protocol == "3.1.1" else paho.MQTTv5
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=device_client_id(unit, device), protocol=protocol)
    password = mqtt.password_value()
    if mqtt.username:
        client.username_pw_set(mqtt.username, password)
    if mqtt.tls:
        client.tls_set(ca_certs=str(mqtt.ca_file) if mqtt.ca_file else None)
    client.reconnect_delay_set(min_delay=1, max_delay=60)
    return client


@dataclass
class _InFlight:
    ids: set[str]
    sent_at: float
    attempts: int = 1


@dataclass
class PublisherStats:
    batches_sent: int = 0
    events_sent: int = 0
    resends: int = 0
    acks: int = 0
    batches_refused: int = 0
    last_refusal: str | None = None
    connects: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Publisher:
    def __init__(
        self,
        outbox: Outbox,
        unit: str,
        device: str,
        config: PublisherConfig,
        mqtt: MqttConfig,
        *,
        client: MqttClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        rng: random.Random | None = None,
        clock_state: Callable[[], bool | None] = ntp_synchronised,
        clock_report: Callable[[], dict[str, Any]] | None = None,
        version: str = "unknown",
        on_config: Callable[[bytes], None] | None = None,
        status_extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._outbox = outbox
        self.unit, self.device = unit, device
        self._config, self._mqtt = config, mqtt
        self._clock, self._wall_clock = clock, wall_clock
        self._rng = rng or random.Random()
        self._clock_state = clock_state
        self._clock_report = clock_report  # the agent's clock guard; else only the NTP state
        self._version = version
        prefix = mqtt.topic_prefix
        self.events_topic = events_topic(unit, device, prefix)
        self.status_topic = status_topic(unit, device, prefix)
        self.ack_topic = ack_topic(unit, device, prefix)
        self.config_topic = config_topic(unit, device, prefix)
        self._on_config = on_config
        self._status_extra = status_extra
        self._lock = threading.RLock()
        self._connected = False
        self._not_before = 0.0
        self._tokens = 0.0
        self._send_due = math.inf  # when a batch that had to wait may go (jitter over, bucket full enough)
        self._refilled_at = clock()
        self._cursor = 0  # highest outbox seq sent on this connection
        self._in_flight: dict[int, _InFlight] = {}
        self._batch_of: dict[str, int] = {}
        self._next_batch = 0
        self._heartbeat_due = 0.0
        self._started_at = clock()
        self.stats = PublisherStats()
        self.on_progress: Callable[[], None] = lambda: None  # called (paho's thread) when tick() may send more
        self._client = client if client is not None else make_paho_client(unit, device, mqtt)
        self._client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.message_callback_add(self.ack_topic, self._on_ack_message)
        if on_config is not None:
            self._client.message_callback_add(self.config_topic, lambda client, userdata, message: on_config(bytes(message.payload)))

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._client.connect_async(self._mqtt.host, self._mqtt.port, keepalive=self._mqtt.keepalive_s)
        self._client.loop_start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say `offline` (retained) while still connected, then disconnect."""
        if self.connected:
            info = self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            wait = getattr(info, "wait_for_publish", None)
            if wait is not None:
                try:
                    wait(timeout_s)
                except (RuntimeError, ValueError):
                    pass
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    # -- paho callbacks (its network thread) ----------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if getattr(reason_code, "is_failure", False):
            log.error("broker refused the connection: %s (check the device's credentials)", reason_code)
            return
        client.subscribe(self.ack_topic, qos=1)
        if self._on_config is not None:
            client.subscribe(self.config_topic, qos=1)  # retained: the current document arrives at once
        now = self._clock()
        with self._lock:
            self._connected = True
            self.stats.connects += 1
            # Whatever was in flight is sent again on this connection (the server counts it once).
            self._cursor = 0
            self._in_flight.clear()
            self._batch_of.clear()
            self._tokens = 0.0
            self._refilled_at = now
            self._not_before = now + self._rng.uniform(0, self._config.start_jitter_s)
            self._heartbeat_due = now
        log.info("connected to %s:%s; draining after %.1f s", self._mqtt.host, self._mqtt.port, self._not_before - now)
        self.on_progress()  # the heartbeat is due now

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        with self._lock:
            self._connected = False
        if getattr(reason_code, "is_failure", False):
            log.warning("lost the broker (%s); the outbox keeps everything, paho reconnects", reason_code)

    def _on_ack_message(self, client, userdata, message) -> None:
        self.handle_ack(bytes(message.payload))

    # -- acknowledgements -----------------------------------------------------------------------------

    def handle_ack(self, payload: bytes) -> None:
        """Apply one acknowledgement from the server (server/ingest/acks.py)."""
        try:
            ack = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("ignored an acknowledgement that is not JSON")
            return
        if not isinstance(ack, dict):
            return
        if ack.get("batch_refused"):
            # No ids: the batch stays in flight and goes again after its timeout, with back-off.
            with self._lock:
                self.stats.batches_refused += 1
                self.stats.last_refusal = str(ack["batch_refused"])[:300]
            log.error("the server refused a whole batch: %s", self.stats.last_refusal)
            return
        committed = [i for i in ack.get("committed") or [] if isinstance(i, str)]
        rejected = [(r.get("id"), str(r.get("reason", ""))) for r in ack.get("rejected") or [] if isinstance(r, dict)]
        report = self._outbox.acknowledge(committed, rejected)
        if rejected:
            log.warning("the server rejected %d event(s) for good; see the outbox's rejected reasons", len(rejected))
        with self._lock:
            self.stats.acks += 1
            for event_id in committed + [i for i, _ in rejected if i]:
                batch = self._batch_of.pop(event_id, None)
                if batch is not None and batch in self._in_flight:
                    waiting = self._in_flight[batch].ids
                    waiting.discard(event_id)
                    if not waiting:
                        del self._in_flight[batch]
        log.debug("acknowledged: %d committed, %d rejected", report.committed, report.rejected)
        self.on_progress()  # a place in flight is free: the agent ticks now, not at its next wake-up

    # -- the work -------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Heartbeat when due; resend what timed out; send new batches as the token bucket allows."""
        now = self._clock()
        if not self._connected:
            return
        if now >= self._heartbeat_due:
            self._heartbeat_due = now + self._config.heartbeat_interval_s
            self.publish_heartbeat()
        with self._lock:
            self._send_due = math.inf
            if not self._connected:
                return
            if now < self._not_before:
                self._send_due = self._not_before  # the start jitter ends
                return
            self._refill(now)
            self._resend_due(now)
            while len(self._in_flight) < self._config.max_inflight_batches:
                rows = self._outbox.batch_after(self._cursor, self._config.batch_events, self._config.batch_max_bytes)
                if not rows or not self._take_tokens(len(rows)):
                    return
                self._send(rows, now)
                self._cursor = rows[-1].seq

    def _refill(self, now: float) -> None:
        rate = self._config.max_events_per_s
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now

    @property
    def _capacity(self) -> float:
        """One second's worth of events, or one batch if that is more."""
        return float(max(self._config.batch_events, self._config.max_events_per_s))

    def _take_tokens(self, count: int) -> bool:
        """A batch goes when the bucket holds enough for it (a full bucket lets any batch go)."""
        if self._tokens >= count or self._tokens >= self._capacity:
            self._tokens -= count
            return True
        needed = min(count, self._capacity) - self._tokens
        self._send_due = self._refilled_at + needed / self._config.max_events_per_s
        return False

    def next_due(self) -> float:
        """The clock time at which `tick()` next has work that waits on time: the heartbeat, the end of
        the start jitter, or the token bucket holding enough for the waiting batch (inf: none)."""
        with self._lock:
            if not self._connected:
                return math.inf
            return min(self._heartbeat_due, self._send_due)

    def _resend_due(self, now: float) -> None:
        for key in sorted(self._in_flight):
            batch = self._in_flight[key]
            wait = min(self._config.resend_after_s * 2 ** (batch.attempts - 1), self._config.max_resend_after_s)
            if now - batch.sent_at < wait:
                continue
            rows = self._outbox.rows(batch.ids)
            if not rows:  # acknowledged through another batch, or dropped by the budget
                self._forget(key)
                continue
            if not self._take_tokens(len(rows)):
                return
            batch.ids = {row.event_id for row in rows}
            batch.sent_at, batch.attempts = now, batch.attempts + 1
            self._publish(rows)
            self.stats.resends += 1
            log.info("no acknowledgement for %d event(s) after %.0f s; sent again (attempt %d)", len(rows), wait, batch.attempts)

    def _send(self, rows: list[OutboxRow], now: float) -> None:
        key = self._next_batch
        self._next_batch += 1
        self._in_flight[key] = _InFlight({row.event_id for row in rows}, now)
        for row in rows:
            self._batch_of[row.event_id] = key
        self._publish(rows)

    def _forget(self, key: int) -> None:
        for event_id in self._in_flight.pop(key).ids:
            self._batch_of.pop(event_id, None)

    def _publish(self, rows: list[OutboxRow]) -> None:
        payload = b'{"device":' + orjson.dumps(self.device) + b',"events":[' + b",".join(row.body for row in rows) + b"]}"
        self._client.publish(self.events_topic, payload, qos=1)
        self.stats.batches_sent += 1
        self.stats.events_sent += len(rows)

    # -- heartbeat ------------------------------------------------------------------------------------

    def heartbeat(self) -> dict[str, Any]:
        if self._clock_report is not None:
            clock = self._clock_report()
        else:
            synced = self._clock_state()
            clock = {"ntp_synced": "unknown" if synced is None else synced}
        with self._lock:
            publisher = {
                "in_flight_batches": len(self._in_flight),
                "batches_sent": self.stats.batches_sent,
                "resends": self.stats.resends,
                "batches_refused": self.stats.batches_refused,
            }
        return {
            "status": "online",
            "device": self.device,
            "version": self._version,
            "uptime_s": round(self._clock() - self._started_at),
            "at": self._wall_clock().isoformat(),
            "clock": clock,
            "outbox": {**self._outbox.stats().as_heartbeat(), "drop_policy": self._outbox.drop_policy},
            "publisher": publisher,
            **(self._status_extra() if self._status_extra is not None else {}),
        }

    def publish_heartbeat(self) -> None:
        self._client.publish(self.status_topic, orjson.dumps(_withhold_personal_numbers(self.heartbeat())), qos=1, retain=True)


WITHHELD = "(text withheld: it holds what looks like a personal identity number)"


def _withhold_personal_numbers(value: Any) -> Any:
    """The heartbeat with any text holding a personal number replaced (SPEC 3.2): a reason can quote a
    file or a server's answer, and the server refuses a whole heartbeat that holds one."""
    if isinstance(value, dict):
        return {key: _withhold_personal_numbers(item) for key, item in value.items()}
    if isinstance(value, str) and contains_personal_number(value):
        return WITHHELD
    return value
