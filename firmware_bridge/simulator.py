"""A simulated device on a pseudo-terminal, speaking protocol v1 as the reference firmware would.

The bridge opens `link_path` (a symlink to the pty's device side, like socat's `link=`), so an unplug
(the pty disappears) and a replug (a new pty behind the same path) look to it like a USB device that
goes away and comes back. The device keeps a "non-volatile" store of unacknowledged presses, its
local sequence counter and its store id across `reset()` and `unplug()`/`plug()`, and loses its RAM
state (session, time sync) as real firmware does on a power cycle.

    device = SimulatedDevice("disp-entre-1", "SE2321000016-15SF", "ticket_dispenser", link_path)
    device.plug(); device.press(1); device.wait_all_acked(); device.unplug()
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
import tty
from dataclasses import dataclass, replace
from pathlib import Path

from .config import KIND_CODES
from .framing import Frame, FrameDecoder, encode_frame
from .messages import (
    EVENT_TIME_SYNCED,
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


@dataclass(frozen=True)
class StoredPress:
    message: EventMsg
    boot: int  # which boot recorded it: an unsynced time can be fixed only within the same boot
    uptime_ms: int


class SimulatedDevice:
    def __init__(
        self,
        device_id: str,
        unit: str,
        kind: str,
        link_path: str | os.PathLike[str],
        *,
        store_id: int = 0x5EED0001,
        firmware: tuple[int, int, int] = (1, 0, 0),
        hello_retry_s: float = 0.2,
        retransmit_s: float = 0.5,
    ) -> None:
        self.device_id = device_id
        self.unit = unit
        self.kind = KIND_CODES[kind]
        self.link_path = Path(link_path)
        self.store_id = store_id
        self.firmware = firmware
        self.hello_retry_s = hello_retry_s
        self.retransmit_s = retransmit_s
        # Non-volatile: survives reset and unplug.
        self.store: dict[int, StoredPress] = {}
        self.next_local_seq = 1
        self.boot = 0
        # What the device saw (for tests).
        self.acked: list[int] = []
        self.refusals: list[int] = []
        self.nacks: list[Nack] = []
        self.time_syncs = 0
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._reset_ram()

    # -- power and cable -------------------------------------------------------------------------

    def _reset_ram(self) -> None:
        self.boot += 1
        self._boot_started = time.monotonic()
        self.session = False
        self.time_offset_ms: int | None = None  # device time = uptime + offset, once synced
        self._tx_seq = 0
        self._decoder = FrameDecoder()
        self._next_hello = 0.0
        self._next_retransmit = 0.0
        self.helloed = threading.Event()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        """Connect: a new pty behind `link_path`, power on (a fresh boot)."""
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line discipline, no XON/XOFF: every byte passes
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            temporary = self.link_path.with_name(self.link_path.name + ".new")
            if temporary.is_symlink() or temporary.exists():
                temporary.unlink()
            os.symlink(os.ttyname(slave), temporary)
            os.replace(temporary, self.link_path)
            self._reset_ram()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name=f"device:{self.device_id}", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        """Pull the cable: the pty goes away (the bridge's reads fail), the device loses power."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        with self._lock:
            try:
                self.link_path.unlink()
            except FileNotFoundError:
                pass
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None

    def reset(self) -> None:
        """Reboot without unplugging: RAM lost (session, time sync), store kept; HELLO again."""
        with self._lock:
            self._reset_ram()

    # -- the line --------------------------------------------------------------------------------

    def inject(self, data: bytes) -> None:
        """Put raw bytes on the line (noise, a broken frame)."""
        self._write(data)

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                return
            try:
                os.write(self._master, data)
            except OSError as exc:  # buffer full (nobody reading) or gone: bytes lost, as on a UART
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise

    def send(self, message: Hello | EventMsg | Nack) -> None:
        with self._lock:
            frame = encode_frame(message.MSG_TYPE, self._tx_seq, message.encode())
            self._tx_seq = (self._tx_seq + 1) & 0xFFFF
            self._write(frame)

    # -- presses ---------------------------------------------------------------------------------

    def _uptime_ms(self) -> int:
        return int((time.monotonic() - self._boot_started) * 1000)

    def press(self, input_id: int, ref: int = 0, recorded_at_ms: int | None = None) -> int:
        """A button press (or a printed ticket). Stored until acknowledged. Returns its local seq.

        `recorded_at_ms` replays a press from a recorded history (the demo's past weeks): the press
        carries that time as a synced device time, as if the device had kept it in its store since."""
        with self._lock:
            local_seq = self.next_local_seq
            self.next_local_seq += 1
            if self.kind == KIND_CODES["ticket_dispenser"] and ref == 0:
                ref = local_seq  # the ticket number printed
            uptime = self._uptime_ms()
            if recorded_at_ms is not None:
                message = EventMsg(local_seq, input_id, EVENT_TIME_SYNCED, recorded_at_ms, ref)
            elif self.time_offset_ms is not None:
                message = EventMsg(local_seq, input_id, EVENT_TIME_SYNCED, uptime + self.time_offset_ms, ref)
            else:
                message = EventMsg(local_seq, input_id, 0, uptime, ref)
            self.store[local_seq] = StoredPress(message, self.boot, uptime)
            if self.session:
                self.send(message)
            return local_seq

    @property
    def unacked(self) -> set[int]:
        with self._lock:
            return set(self.store)

    def wait_all_acked(self, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.unacked:
                return True
            time.sleep(0.01)
        return not self.unacked

    # -- firmware main loop ----------------------------------------------------------------------

    def _loop(self) -> None:
        while self._running.is_set():
            master = self._master
            if master is None:
                return
            try:
                ready, _, _ = select.select([master], [], [], 0.02)
                data = os.read(master, 4096) if ready else b""
            except OSError:  # EIO: nobody has the port open (bridge not running); keep trying
                data = b""
                time.sleep(0.02)
            for item in self._decoder.feed(data):
                if isinstance(item, Frame):
                    self._on_frame(item)
            self._tick()

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            if not self.session:
                if now >= self._next_hello:
                    self.send(Hello(self.device_id, self.unit, self.kind, self.firmware, self.store_id))
                    self._next_hello = now + self.hello_retry_s
            elif now >= self._next_retransmit:
                for local_seq in sorted(self.store):
                    self.send(self.store[local_seq].message)
                self._next_retransmit = now + self.retransmit_s

    def _on_frame(self, frame: Frame) -> None:
        try:
            message = decode_message(frame.type, frame.payload)
        except MalformedMessage:
            self.send(Nack(Reason.MALFORMED, frame.type, frame.seq))
            return
        with self._lock:
            if isinstance(message, HelloAck):
                if not message.accepted:
                    self.refusals.append(message.reason)
                    self._next_hello = time.monotonic() + self.hello_retry_s * 5
                    return
                self._sync(message.time_ms)
                self.session = True
                self.helloed.set()
                self._next_retransmit = 0.0  # send everything unacknowledged now
            elif isinstance(message, TimeSync):
                self.time_syncs += 1
                self._sync(message.time_ms)
            elif isinstance(message, Ack):
                for local_seq in message.local_seqs:
                    if self.store.pop(local_seq, None) is not None:
                        self.acked.append(local_seq)
            elif isinstance(message, Nack):
                self.nacks.append(message)
                if message.reason == Reason.NOT_HELLOED:
                    self.session = False
                    self._next_hello = 0.0
                else:  # keep the press; retry at the next session rather than every retransmit
                    self._next_retransmit = time.monotonic() + self.retransmit_s * 4
            elif message.MSG_TYPE in (MsgType.HELLO, MsgType.EVENT):
                self.send(Nack(Reason.UNKNOWN_TYPE, frame.type, frame.seq))

    def _sync(self, time_ms: int) -> None:
        """Take the bridge's time; re-date the presses this boot recorded before it was synced."""
        self.time_offset_ms = time_ms - self._uptime_ms()
        for local_seq, stored in list(self.store.items()):
            if stored.boot == self.boot and not stored.message.time_synced:
                message = replace(stored.message, flags=stored.message.flags | EVENT_TIME_SYNCED, device_time_ms=stored.uptime_ms + self.time_offset_ms)
                self.store[local_seq] = replace(stored, message=message)
