"""Consume collector batches from the broker; acknowledge only what is committed.

The MQTT client runs with manual acknowledgement: the broker gets its PUBACK only after the batch is
committed and the device's acknowledgement is published. If this process dies before that, the broker
redelivers the message (persistent session) and ingest, being idempotent, counts nothing twice.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import paho.mqtt.client as mqtt
from sqlalchemy.exc import DBAPIError
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vardkoll.protocol.batches import BatchRejected, parse_batch
from vardkoll.protocol.topics import EVENTS, STATUS, ack_topic, events_subscription, parse_topic

from ..services import Services
from .acks import ack_payload, refusal_payload
from .device_registry import DeviceRegistry
from .service import Source

log = logging.getLogger("vardkoll.ingest.mqtt")
T = TypeVar("T")

SESSION_EXPIRY_S = 24 * 3600
QUEUE_MESSAGES = 64
GROUP_MESSAGES = 8  # batches committed in one transaction when they are already waiting


@dataclass(frozen=True)
class Received:
    mid: int
    qos: int
    topic: str
    payload: bytes


class MqttConsumer:
    def __init__(self, services: Services, client_id: str | None = None, on_commit=None) -> None:
        self._services = services
        self._settings = services.settings
        self._devices = DeviceRegistry(services.sessions, accept_unregistered=services.settings.dev)
        # Unique per process: two processes sharing a client id would throw each other off the broker.
        self._client_id = client_id or f"vardkoll-server-{socket.gethostname()}-{self._settings.instance or os.getpid()}"
        self._on_commit = on_commit
        self._inbox: queue.Queue[Received | None] = queue.Queue(maxsize=QUEUE_MESSAGES)
        self._worker = threading.Thread(target=self._work, name="vardkoll-ingest", daemon=True)
        self._protocol = MQTTProtocolVersion.MQTTv5
        self._client = self._make_client()
        self.connected = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=self._protocol, manual_ack=True, clean_session=None if v5 else False
        )
        if self._settings.mqtt_username:
            password = self._settings.mqtt_password.get_secret_value() if self._settings.mqtt_password else None
            client.username_pw_set(self._settings.mqtt_username, password)
        if self._settings.mqtt_tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        self._worker.start()
        self._connect()
        self._client.loop_start()

    def _connect(self) -> None:
        host, port = self._settings.mqtt_host, self._settings.mqtt_port
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self._client.connect(host, port, keepalive=30, clean_start=False, properties=properties)
        else:
            self._client.connect(host, port, keepalive=30)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._inbox.put(None)
        self._worker.join(timeout=10)

    # -- callbacks (paho's network thread) ---------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if self._protocol == MQTTProtocolVersion.MQTTv5 and reason_code.value in (1, 132):  # broker speaks only 3.1.1
                log.warning("broker refused MQTT v5; falling back to 3.1.1 without shared subscriptions")
                threading.Thread(target=self._fall_back_to_v311, daemon=True).start()
            else:
                log.error("broker refused the connection: %s", reason_code)
            return
        prefix = self._settings.topic_prefix
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        share = self._settings.share_group if v5 else None
        client.subscribe([(events_subscription(prefix, share), 1), (f"{prefix}/+/+/{STATUS}", 1)])
        self.connected.set()
        log.info("connected to %s:%s (%s)", self._settings.mqtt_host, self._settings.mqtt_port, "v5, shared" if share else "3.1.1")

    def _fall_back_to_v311(self) -> None:
        self._client.loop_stop()
        self._protocol = MQTTProtocolVersion.MQTTv311
        self._client = self._make_client()
        self._connect()
        self._client.loop_start()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if reason_code.is_failure:
            log.warning("lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message) -> None:
        # Blocks when the worker is behind: the broker then holds further messages (backpressure).
        self._inbox.put(Received(message.mid, message.qos, message.topic, bytes(message.payload)))

    # -- the worker ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            group, stopping = self._next_group()
            if group:
                self._commit_group(group)
            if stopping:
                return

    def _next_group(self) -> tuple[list[Received], bool]:
        """The next message and those already waiting behind it, up to GROUP_MESSAGES: committed in one
        transaction, which is what lets a busy broker cost one commit per group instead of per batch."""
        first = self._inbox.get()
        if first is None:
            return [], True
        group = [first]
        while len(group) < GROUP_MESSAGES:
            try:
                waiting = self._inbox.get_nowait()
            except queue.Empty:
                break
            if waiting is None:
                return group, True
            group.append(waiting)
        return group, False

    def _commit_group(self, group: list[Received]) -> None:
        batches = self._retrying(group, lambda: self._prepare(group))
        if batches:
            self._retrying(group, lambda: self._commit(batches))
        for received in group:
            self._client.ack(received.mid, received.qos)

    def _retrying(self, group: list[Received], step: Callable[[], T]) -> T | None:
        while True:
            try:
                return step()
            except DBAPIError as exc:
                # The database is away: keep the messages unacknowledged and try again; nothing is lost.
                # Only the error's kind is logged: its text would quote the rows.
                log.error("could not commit %d batches (%s %s); retrying", len(group), type(exc.orig).__name__, getattr(exc.orig, "sqlstate", ""))
                time.sleep(1)
            except Exception:  # noqa: BLE001
                # A fault of ours. The devices get no acknowledgement, so they keep the events and
                # send them again later; the broker is released so that one batch blocks nobody.
                log.exception("internal error on %d batches from %s; the devices will resend them", len(group), group[0].topic)
                return None

    def _prepare(self, group: list[Received]) -> list[tuple[list[Any], Source, str]]:
        """Status messages and refused payloads are dealt with here, one by one; the readable batches
        are returned (items, source, ack topic), in the order they came."""
        batches: list[tuple[list[Any], Source, str]] = []
        for received in group:
            address = parse_topic(received.topic, self._settings.topic_prefix)
            if address is None:
                continue
            if address.leaf == STATUS:
                self._devices.record_status(address.unit, address.device, received.payload)
                continue
            if address.leaf != EVENTS:
                continue
            source = Source("mqtt", unit=address.unit, device=address.device)
            reply = ack_topic(address.unit, address.device, self._settings.topic_prefix)
            refusal = self._refusal(address.unit, address.device, received.payload)
            if refusal is None:
                try:
                    device, items = parse_batch(received.payload, self._settings.max_batch_events)
                except BatchRejected as exc:
                    refusal = exc.reason
                else:
                    if device is not None and device != address.device:
                        refusal = f"batch names device {device} but was published on the topic of device {address.device}"
            if refusal is not None:
                self._services.ingest.refuse_payload(refusal, source, received.payload)
                self._client.publish(reply, refusal_payload(refusal), qos=1)
                continue
            batches.append((items, source, reply))
        return batches

    def _commit(self, batches: list[tuple[list[Any], Source, str]]) -> None:
        """The batches in one transaction, then each device's acknowledgement, in order."""
        reports = self._services.ingest.ingest_many([(items, source) for items, source, _ in batches], datetime.now(timezone.utc))
        self._devices.seen_many([(source.unit, source.device) for _, source, _ in batches])  # type: ignore[misc]  # a batch's source is set when it was admitted
        changed: set[str] = set()
        for (_, _, reply), report in zip(batches, reports):
            self._client.publish(reply, ack_payload(report), qos=1)
            changed |= report.units_changed
        if self._on_commit is not None and changed:
            self._on_commit(changed)

    def _refusal(self, unit: str, device: str, payload: bytes) -> str | None:
        if len(payload) > self._settings.max_payload_bytes:
            return f"payload of {len(payload)} bytes is over the limit of {self._settings.max_payload_bytes}"
        if not self._devices.may_publish(unit, device):
            return f"device {device} is not registered for unit {unit}"
        return None
