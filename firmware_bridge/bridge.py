"""The bridge: serial ports in, validated v1 events out to a durable sink, ACKs back to the devices.

One thread per port. Each opens the port (pyserial), re-opens it with backoff after an unplug, feeds the
bytes to a `FrameDecoder` (garbage and broken frames are counted, never raised) and runs one
`DeviceSession` per connection. A press is acknowledged to the device only after `sink.add` returned:
the sink (the collector's outbox) is what makes it durable, so a crash between the two costs a resend,
never a loss, and the resend is recognised as a duplicate (same event id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable, Protocol
from zoneinfo import ZoneInfo

from vardkoll.collector.key_schedule import PeriodBook
from vardkoll.protocol.validation import EventRejected, validate_event

from .config import BridgeConfig, DeviceConfig
from .framing import Frame, FrameDecoder, encode_frame
from .mapping import CONNECTOR, bridge_pipeline, source_event, stamp
from .messages import (
    PROTOCOL_VERSION,
    Ack,
    EventMsg,
    Hello,
    HelloAck,
    MalformedMessage,
    MsgType,
    Nack,
    Reason,
    TimeSync,
    decode_message,
)

log = logging.getLogger("vardkoll.firmware_bridge")

# Presses already handed to the sink, per device: a resend is acknowledged again, not added again.
RECENT_ACKED_MAX = 8192


class EventSink(Protocol):
    """Where events go. `add` returns only once the event is stored durably (the collector outbox);
    it raises if it cannot store it, and the press is then not acknowledged to the device."""

    def add(self, event: dict[str, Any]) -> None: ...


class MemorySink:
    """An in-memory sink for tests and the simulator demo (not durable)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False  # tests: make add() raise, as an unavailable outbox would
        self._lock = threading.Lock()

    def add(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self.fail:
                raise OSError("sink unavailable (simulated)")
            self.events.append(event)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)


class OutboxSink:
    """Adapts the collector's outbox (`add(events) -> report` with `refused` and `dropped`) to `EventSink`.

    A press the outbox refused or dropped raises, so the bridge does not acknowledge it; a duplicate is
    fine (the outbox already holds that event).

    Every press is stamped by this device's clock (its receive time, or a device clock synced from it),
    so `hold` (the collector's `Agent.device_clock_hold`) is asked before each add: while the clock is
    not trustworthy it returns a stamp and the outbox holds the event back (collector/clock.py)."""

    def __init__(self, outbox: Any, hold: Callable[[], Any] | None = None) -> None:
        self.outbox = outbox
        self.hold = hold

    def add(self, event: dict[str, Any]) -> None:
        stamp = self.hold() if self.hold is not None else None
        if stamp is None:
            report = self.outbox.add([event])
        else:
            report = self.outbox.add([event], held_ids=[event.get("id")], hold=stamp)
        if report.refused:
            raise RuntimeError(f"outbox refused the event: {report.refused[0]}")
        if report.dropped:
            raise RuntimeError("outbox is full and dropped the event")


class BridgeStats:
    """Thread-safe counters, named `area.what` (e.g. `frame_error.crc`, `hello_refused.wrong_unit`)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Bridge:
    def __init__(
        self,
        config: BridgeConfig,
        sink: EventSink,
        *,
        key: bytes | None = None,
        periods: PeriodBook | None = None,
        clock: Callable[[], datetime] = _utc_now,
        open_port: Callable[[str, int], Any] | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        key = key if key is not None else config.key()
        # One pipeline per unit: the collector's, with the bridge's scheme, makes ids and pseudonyms; with
        # the collector's period book (`periods`) case pseudonyms follow the key schedule.
        self.pipelines = {unit: bridge_pipeline(key, unit, config.event_device, periods) for unit in {d.unit for d in config.devices}}
        self.clock = clock
        self.stats = BridgeStats()
        self.tz = ZoneInfo(config.timezone)
        self._open_port = open_port or _open_serial
        self._sink_lock = threading.Lock()
        self._acked: dict[str, OrderedDict[tuple[int, int], None]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, ports: tuple[str, ...] | list[str] | None = None) -> None:
        for port in ports if ports is not None else self.config.ports:
            self.add_port(port)

    def add_port(self, port: str) -> None:
        thread = threading.Thread(target=self._port_loop, args=(port,), name=f"bridge:{port}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    # -- one port --------------------------------------------------------------------------------

    def _port_loop(self, port: str) -> None:
        backoff_s = self.config.reopen_initial_s
        decoder = FrameDecoder()
        while not self._stop.is_set():
            try:
                serial_port = self._open_port(port, self.config.baudrate)
            except Exception as exc:  # noqa: BLE001 - pyserial raises SerialException, OSError, ValueError
                self.stats.count("port.open_failed")
                log.debug("cannot open %s: %s; retrying in %.2f s", port, exc, backoff_s)
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self.config.reopen_max_s)
                continue
            backoff_s = self.config.reopen_initial_s
            self.stats.count("port.opened")
            log.info("serial port opened", extra={"port": port})
            session = DeviceSession(self, port, serial_port)
            try:
                session.run(decoder, self._stop)
            except Exception as exc:  # noqa: BLE001 - unplugged: SerialException / OSError; never fatal
                self.stats.count("port.lost")
                log.warning("serial port lost: %s", type(exc).__name__, extra={"port": port})
            finally:
                if decoder.pending:
                    self.stats.count("frame_error.truncated")
                decoder.reset()
                try:
                    serial_port.close()
                except Exception:  # noqa: BLE001
                    pass
            if not self._stop.is_set():
                self._stop.wait(self.config.reopen_initial_s)
        self.stats.count("port.closed")

    # -- shared state ----------------------------------------------------------------------------

    def already_acked(self, device_id: str, store_id: int, local_seq: int) -> bool:
        with self._sink_lock:
            return (store_id, local_seq) in self._acked.get(device_id, {})

    def deliver(self, device_id: str, store_id: int, local_seq: int, event: dict[str, Any]) -> bool:
        """Hand an event to the sink unless this press was delivered before. True when it was added."""
        with self._sink_lock:
            recent = self._acked.setdefault(device_id, OrderedDict())
            if (store_id, local_seq) in recent:
                return False
            self.sink.add(event)
            recent[(store_id, local_seq)] = None
            if len(recent) > RECENT_ACKED_MAX:
                recent.popitem(last=False)
            return True


def _open_serial(port: str, baudrate: int) -> Any:
    import serial  # pyserial: the `bridge` extra

    return serial.serial_for_url(port, baudrate=baudrate, timeout=0.05, write_timeout=1.0)


class DeviceSession:
    """One connection on one port: HELLO, then EVENTs. Knows nothing until the device says HELLO."""

    def __init__(self, bridge: Bridge, port: str, serial_port: Any) -> None:
        self.bridge = bridge
        self.port = port
        self.serial = serial_port
        self.stats = bridge.stats
        self.device: DeviceConfig | None = None
        self.hello: Hello | None = None
        self._tx_seq = 0
        self._next_time_sync = 0.0

    def run(self, decoder: FrameDecoder, stop: threading.Event) -> None:
        while not stop.is_set():
            data = self.serial.read(max(1, self.serial.in_waiting))
            if data:
                garbage_before = decoder.garbage_bytes
                for item in decoder.feed(data):
                    if isinstance(item, Frame):
                        self.stats.count("frames.received")
                        self.handle(item)
                    else:
                        self.stats.count(f"frame_error.{item.reason.value}")
                if decoder.garbage_bytes != garbage_before:
                    self.stats.count("garbage_bytes", decoder.garbage_bytes - garbage_before)
            if self.device is not None and time.monotonic() >= self._next_time_sync:
                self.send(TimeSync(self._now_ms()))
                self._next_time_sync = time.monotonic() + self.bridge.config.time_sync_interval_s

    # -- sending ---------------------------------------------------------------------------------

    def send(self, message: Hello | HelloAck | Ack | TimeSync | Nack | EventMsg) -> None:
        self.serial.write(encode_frame(message.MSG_TYPE, self._tx_seq, message.encode()))
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        self.stats.count("frames.sent")

    def _now_ms(self) -> int:
        return int(self.bridge.clock().timestamp() * 1000)

    def nack(self, reason: Reason, frame: Frame, local_seq: int = 0) -> None:
        self.stats.count(f"nack.{reason.name.lower()}")
        self.send(Nack(reason, frame.type, frame.seq, local_seq))

    # -- receiving -------------------------------------------------------------------------------

    def handle(self, frame: Frame) -> None:
        try:
            message = decode_message(frame.type, frame.payload)
        except MalformedMessage as exc:
            known = frame.type in MsgType._value2member_map_
            log.warning("refused frame: %s", exc, extra={"port": self.port})
            self.nack(Reason.MALFORMED if known else Reason.UNKNOWN_TYPE, frame)
            return
        if isinstance(message, Hello):
            self.on_hello(message)
        elif isinstance(message, EventMsg):
            self.on_event(message, frame)
        elif isinstance(message, Nack):
            self.stats.count("device_nack")
            log.warning("device refused a frame: reason %d", message.reason, extra={"port": self.port})
        else:
            self.nack(Reason.UNKNOWN_TYPE, frame)  # bridge-to-device messages sent the wrong way

    def on_hello(self, hello: Hello) -> None:
        device = self.bridge.config.device(hello.device_id)
        if hello.protocol_version != PROTOCOL_VERSION:
            reason = Reason.UNSUPPORTED_VERSION
        elif device is None:
            reason = Reason.UNKNOWN_DEVICE
        elif hello.unit != device.unit:
            reason = Reason.WRONG_UNIT
        elif hello.kind != device.kind_code:
            reason = Reason.WRONG_KIND
        else:
            reason = Reason.NONE
        fields = {"port": self.port, "device_id": hello.device_id, "claimed_unit": hello.unit, "firmware": ".".join(map(str, hello.firmware))}
        if reason is not Reason.NONE:
            self.device, self.hello = None, None
            self.stats.count(f"hello_refused.{reason.name.lower()}")
            log.warning("device refused: %s", reason.name.lower(), extra=fields)
            self.send(HelloAck(False, reason, self._now_ms()))
            return
        self.device, self.hello = device, hello
        self.stats.count("hello_accepted")
        log.info("device connected", extra=fields)
        self.send(HelloAck(True, Reason.NONE, self._now_ms()))
        self._next_time_sync = time.monotonic() + self.bridge.config.time_sync_interval_s

    def on_event(self, press: EventMsg, frame: Frame) -> None:
        device, hello = self.device, self.hello
        if device is None or hello is None:
            self.stats.count("events_refused.not_helloed")
            self.nack(Reason.NOT_HELLOED, frame, press.local_seq)
            return
        if self.bridge.already_acked(device.device_id, hello.store_id, press.local_seq):
            self.stats.count("events.duplicate")
            self.send(Ack((press.local_seq,)))
            return
        mapping = device.inputs.get(press.input)
        if mapping is None:
            self.stats.count("events_refused.unknown_input")
            self.nack(Reason.UNKNOWN_INPUT, frame, press.local_seq)
            return
        config = self.bridge.config
        when = stamp(press, self.bridge.clock(), unsynced_policy=config.unsynced_events, max_future_skew_s=config.max_future_skew_s)
        if when.source != "device":
            self.stats.count(f"events.{when.source}")
        if when.at is None:
            self.nack(Reason.TIME_NOT_SYNCED, frame, press.local_seq)
            self.send(TimeSync(self._now_ms()))
            return
        source = source_event(device, mapping, press, hello.store_id, when.at, self.bridge.tz)
        pipeline = self.bridge.pipelines[device.unit]
        event = pipeline.to_wire(CONNECTOR, source)
        try:
            validate_event(event)
        except EventRejected as exc:
            self.stats.count("events_refused.invalid_event")
            log.warning("event refused: %s", exc.reason, extra={"device_id": device.device_id})
            self.nack(Reason.INVALID_EVENT, frame, press.local_seq)
            return
        try:
            pipeline.flush()  # the case's period is on disk before the press is in the outbox
            added = self.bridge.deliver(device.device_id, hello.store_id, press.local_seq, event)
        except Exception as exc:  # noqa: BLE001 - whatever the sink raises, the press stays on the device
            self.stats.count("events_refused.sink_unavailable")
            log.warning("sink refused event: %s", type(exc).__name__, extra={"device_id": device.device_id})
            self.nack(Reason.SINK_UNAVAILABLE, frame, press.local_seq)
            return
        self.stats.count("events.added" if added else "events.duplicate")
        self.send(Ack((press.local_seq,)))
