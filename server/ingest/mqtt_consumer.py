"""Consume collector batches from the broker; acknowledge only what is committed.

The MQTT client runs with manual acknowledgement: the broker gets its PUBACK only after the batch is
committed and the device's acknowledgement is published. If this process dies before that, the broker
redelivers the message (persistent session) and ingest, being idempotent, counts nothing twice.

Sessions (issue 12, item 1): the client id is stable per process slot (`mqtt_identity`), so a process
restarted after a crash resumes its session and gets what was queued for it at once. The session
expires `VARDKOLL_MQTT_SESSION_EXPIRY_S` (default 60 s) after a disconnect: a process that never comes
back (scale-down) stops receiving its share of the shared subscription then. Mosquitto drops what it
had queued for an expired session rather than handing it to another member of the share group; the
collectors re-send everything unacknowledged, so nothing is lost, only later.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from vardkoll.protocol.batches import BatchRejected, parse_batch
from vardkoll.protocol.topics import EVENTS, STATUS, ack_topic, events_subscription, parse_topic, topic_problem

from ..monitoring import count_batch_acked
from ..settings import ServerSettings
from ..storage.faults import error_kind, is_database_error, is_transient
from .acks import ack_payload, refusal_payload
from .device_registry import DeviceRegistry
from .mqtt_identity import ServerIdentity
from .service import IngestService, Source

log = logging.getLogger("vardkoll.ingest.mqtt")
T = TypeVar("T")

QUEUE_MESSAGES = 64
GROUP_MESSAGES = 8  # batches committed in one transaction when they are already waiting
SESSION_TAKEN_OVER = 142  # MQTT v5 DISCONNECT reason: another connection uses our client id
RETAINED_REFUSAL = "retained message on an events topic: publish event batches without the retain flag"


@dataclass(frozen=True)
class Received:
    mid: int
    qos: int
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True)
class ReadBatch:
    items: list[Any]
    source: Source
    reply: str  # the device's acknowledgement topic


class MqttConsumer:
    """Takes what it uses: the settings, ingest, and the device registry (who may publish, status)."""

    def __init__(
        self,
        settings: ServerSettings,
        ingest: IngestService,
        devices: DeviceRegistry,
        client_id: str | None = None,
        on_commit: Callable[[set[str]], None] | None = None,
    ) -> None:
        self._settings = settings
        self._ingest = ingest
        self._devices = devices
        self._identity: ServerIdentity | None = None
        if client_id is None:
            self._identity = ServerIdentity(settings.instance, settings.mqtt_url)
            client_id = self._identity.client_id
        self._client_id = client_id
        self._on_commit = on_commit
        self._inbox: queue.Queue[Received | None] = queue.Queue(maxsize=QUEUE_MESSAGES)
        self._worker = threading.Thread(target=self._work, name="vardkoll-ingest", daemon=True)
        self._protocol = MQTTProtocolVersion.MQTTv311 if self._settings.mqtt_protocol == "3.1.1" else MQTTProtocolVersion.MQTTv5
        self._client = self._make_client()
        self.connected = threading.Event()

    @property
    def client_id(self) -> str:
        return self._client_id

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
            client.tls_set(ca_certs=self._settings.mqtt_ca_file)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Returns at once, broker or not: the client keeps trying to connect in the background, so the
        API serves (and says so in /health) while the broker is away."""
        self._worker.start()
        self._connect()
        self._client.loop_start()

    def _connect(self) -> None:
        host, port = self._settings.mqtt_host, self._settings.mqtt_port
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self._settings.mqtt_session_expiry_s
            self._client.connect_async(host, port, keepalive=30, clean_start=False, properties=properties)
        else:
            self._client.connect_async(host, port, keepalive=30)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._inbox.put(None)
        self._worker.join(timeout=10)
        if self._identity is not None:
            self._identity.release()

    # -- callbacks (paho's network thread) ---------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if self._protocol == MQTTProtocolVersion.MQTTv5 and reason_code.value in (1, 132):  # broker speaks only 3.1.1
                log.warning("broker refused MQTT v5; falling back to 3.1.1 without shared subscriptions")
                threading.Thread(target=self._reconnect_as, args=(MQTTProtocolVersion.MQTTv311, self._client_id), daemon=True).start()
            else:
                log.error("broker refused the connection: %s", reason_code)
            return
        prefix = self._settings.topic_prefix
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        share = self._settings.share_group if v5 else None
        # Retained messages are never sent when subscribing (retain handling 2); a retained batch that
        # is published while we listen keeps its flag (retain as published), so it is refused.
        events = SubscribeOptions(qos=1, retainHandling=2, retainAsPublished=True) if v5 else 1
        client.subscribe([(events_subscription(prefix, share), events), (f"{prefix}/+/+/{STATUS}", SubscribeOptions(qos=1) if v5 else 1)])
        log.info("connected to %s:%s as %s (%s)", self._settings.mqtt_host, self._settings.mqtt_port, self._client_id, "v5, shared" if share else "3.1.1")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(code.is_failure for code in reason_codes):
            log.error("the broker refused the subscriptions (%s); check the server account's ACLs (deploy/broker/)", ", ".join(map(str, reason_codes)))
            return
        self.connected.set()  # connected and subscribed: what is published from now on reaches us

    def _reconnect_as(self, protocol: MQTTProtocolVersion, client_id: str) -> None:
        self._client.loop_stop()
        self._protocol = protocol
        self._client_id = client_id
        self._client = self._make_client()
        self._connect()
        self._client.loop_start()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if getattr(reason_code, "value", None) == SESSION_TAKEN_OVER:
            # Two processes with one id would throw each other off for ever: this one steps aside.
            fresh = f"{self._client_id}-{uuid.uuid4().hex[:6]}"
            log.error(
                "another connection took over the MQTT client id %s (two server processes with one VARDKOLL_INSTANCE?); "
                "continuing as %s: give each process its own VARDKOLL_INSTANCE",
                self._client_id,
                fresh,
            )
            threading.Thread(target=self._reconnect_as, args=(self._protocol, fresh), daemon=True).start()
        elif reason_code.is_failure:
            log.warning("lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message) -> None:
        # Blocks when the worker is behind: the broker then holds further messages (backpressure).
        self._inbox.put(Received(message.mid, message.qos, message.topic, bytes(message.payload), bool(message.retain)))

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
        batches = [batch for received in group if (batch := self._retrying(lambda: self._read(received))) is not None]
        if batches:
            self._retrying(lambda: self._commit(batches))
        for received in group:
            self._client.ack(received.mid, received.qos)

    def _retrying(self, step: Callable[[], T]) -> T | None:
        """Transient database errors are retried until they pass: the messages stay unacknowledged
        meanwhile, so nothing is lost. Ingest sets aside what is not transient (service.ingest_many);
        anything else raised here is a fault of ours, logged, and the devices resend."""
        while True:
            try:
                return step()
            except Exception as exc:  # noqa: BLE001
                if not is_transient(exc):
                    log.error("internal error (%s); the devices will resend", error_kind(exc), exc_info=not is_database_error(exc))
                    return None
                # Only the error's kind is logged: its text would quote the rows.
                log.error("the database is unavailable (%s); retrying", error_kind(exc))
                time.sleep(1)

    def _read(self, received: Received) -> ReadBatch | None:
        """A status message is recorded and a refused payload answered here; a readable batch is returned."""
        address = parse_topic(received.topic, self._settings.topic_prefix)
        if address is None:
            return None
        problem = topic_problem(address)
        if address.leaf == STATUS:
            if problem is None:  # status is retained by design (SPEC 3.3); a bad topic is not ours to keep
                self._devices.record_status(address.unit, address.device, received.payload)
            return None
        if address.leaf != EVENTS:
            return None
        reply = ack_topic(address.unit, address.device, self._settings.topic_prefix)
        if problem is not None:
            self._refuse(f"events topic refused: {problem}", Source("mqtt"), received, reply)
            return None
        source = Source("mqtt", unit=address.unit, device=address.device)
        refusal = RETAINED_REFUSAL if received.retain else self._refusal(address.unit, address.device, received.payload)
        if refusal is None:
            try:
                device, items = parse_batch(received.payload, self._settings.max_batch_events)
            except BatchRejected as exc:
                refusal = exc.reason
            else:
                if device is not None and device != address.device:
                    refusal = f"batch names device {device} but was published on the topic of device {address.device}"
        if refusal is not None:
            self._refuse(refusal, source, received, reply)
            return None
        return ReadBatch(items, source, reply)

    def _refuse(self, reason: str, source: Source, received: Received, reply: str) -> None:
        self._ingest.refuse_payload(reason, source, received.payload)
        self._client.publish(reply, refusal_payload(reason), qos=1)
        count_batch_acked("refused")

    def _commit(self, batches: list[ReadBatch]) -> None:
        """The batches in one transaction, then each device's acknowledgement, in order."""
        reports = self._ingest.ingest_many([(batch.items, batch.source) for batch in batches], datetime.now(timezone.utc))
        self._devices.seen_many([(batch.source.unit, batch.source.device) for batch in batches])  # type: ignore[misc]  # a batch's source is set when it was admitted
        changed: set[str] = set()
        for batch, report in zip(batches, reports):
            self._client.publish(batch.reply, ack_payload(report), qos=1)
            changed |= report.units_changed
        count_batch_acked("committed", len(batches))
        if self._on_commit is not None and changed:
            self._on_commit(changed)

    def _refusal(self, unit: str, device: str, payload: bytes) -> str | None:
        if len(payload) > self._settings.max_payload_bytes:
            return f"payload of {len(payload)} bytes is over the limit of {self._settings.max_payload_bytes}"
        if not self._devices.may_publish(unit, device):
            return f"device {device} is not registered for unit {unit}"
        return None
