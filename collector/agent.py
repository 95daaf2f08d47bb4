"""The collector agent: connectors → pipeline (pseudonyms) → outbox → publisher, in one loop.

`Agent.run()` runs until SIGTERM or SIGINT (or `stop()`), then says `offline` and closes the outbox.
Connectors are polled every `poll_interval_s`. The publisher ticks after every poll, at least every
`TICK_S`, and at once when an acknowledgement frees a place for the next batch (so the drain is not
paced by the loop); an idle collector wakes about once a second.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from .clock import ClockGuard, ClockReading, ClockState, HoldStamp, make_clock_reader
from .config import CollectorConfig
from .connectors import Connector, ConnectorContext, build_connector
from .outbox import Outbox
from .pipeline import Pipeline
from .publisher import MqttClient, Publisher, ntp_synchronised
from .pseudonyms import Pseudonymiser, load_or_create_secret

log = logging.getLogger("vardkoll.collector")

TICK_S = 1.0  # the longest the loop sleeps: heartbeats, resends and the token bucket need no finer grain


def collector_version() -> str:
    try:
        from importlib.metadata import version

        return version("vardkoll")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "unknown"


@dataclass
class CollectReport:
    added: int = 0
    duplicates: int = 0
    dropped: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)


class Agent:
    def __init__(
        self,
        config: CollectorConfig,
        *,
        client: MqttClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        clock_state: Callable[[], bool | None] = ntp_synchronised,
        clock_reader: Callable[[], ClockReading] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self.clock_guard = ClockGuard(config.clock.floor, config.clock.max_jump_s)
        self._read_clock = clock_reader or make_clock_reader(_cached(clock_state, config.clock.ntp_check_interval_s, clock))
        self._held_waiting = True  # until the outbox was asked
        self._clock_lock = threading.RLock()
        self.pipeline = Pipeline(Pseudonymiser(load_or_create_secret(config.pseudonyms.secret_file)), config.unit, config.device)
        box = config.outbox
        self.outbox = Outbox(box.path, unit=config.unit, device=config.device, max_events=box.max_events, max_bytes=box.max_bytes, drop_policy=box.drop_policy)
        self.connectors: dict[str, Connector] = {}
        for entry in config.connectors:
            context = ConnectorContext(entry.instance_name, self._checkpoint_lookup(entry.instance_name), wall_clock)
            self.connectors[entry.instance_name] = build_connector(entry.type, entry.settings, context)
        self.publisher = Publisher(
            self.outbox,
            config.unit,
            config.device,
            config.publisher,
            config.mqtt,
            client=client,
            clock=clock,
            wall_clock=lambda: datetime.fromtimestamp(wall_clock(), timezone.utc),
            rng=rng,
            clock_state=clock_state,
            clock_report=self.clock_guard.heartbeat,
            version=collector_version(),
        )
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and by the publisher when it can send more
        self.publisher.on_progress = self._wake.set

    def _checkpoint_lookup(self, source: str) -> Callable[[str], str | None]:
        return lambda key: self.outbox.checkpoint(source, key)

    # -- the clock ------------------------------------------------------------------------------------

    def check_clock(self) -> ClockState:
        """Judge the clock now; log a change of verdict; release held events once it is ok."""
        with self._clock_lock:  # the agent's loop and the bridge's port threads
            return self._check_clock()

    def _check_clock(self) -> ClockState:
        before = self.clock_guard.state
        state = self.clock_guard.observe(self._read_clock())
        if before is None or before.verdict != state.verdict:
            if state.ok:
                log.info("device clock ok (NTP synchronised: %s)", state.reading.ntp_synced)
            else:
                log.warning("device clock not trustworthy: %s; events stamped by this device are held until it is", state.reason)
        if state.ok and self._held_waiting:
            released = self.outbox.release_held(state.reading.boot_id, state.reading.offset_s)
            self._held_waiting = False  # stranded ones stay held: this boot cannot correct them
            if released.released:
                log.info("released %d held event(s), their times corrected by %s s", released.released, ", ".join(f"{c:+.0f}" for c in released.corrections_s))
            if released.stranded:
                log.error("%d held event(s) were stamped before the last reboot by a wrong clock and cannot be corrected; they stay held (dump-outbox shows them)", released.stranded)
        return state

    def device_clock_hold(self) -> HoldStamp | None:
        """For a caller about to store events stamped by this device's clock: the stamp to hold them
        with, or None when the clock is ok (e.g. the firmware bridge's `OutboxSink`)."""
        with self._clock_lock:
            state = self._check_clock()
            if state.ok:
                return None
            self._held_waiting = True
            return HoldStamp(state.reading.boot_id, state.reading.offset_s)

    # -- collecting -----------------------------------------------------------------------------------

    def collect_once(self) -> CollectReport:
        """Poll every connector once and store what they give (each batch with its checkpoint)."""
        report = CollectReport()
        for name, connector in self.connectors.items():
            try:
                for batch in connector.poll():
                    events = [self.pipeline.to_wire(name, source) for source in batch.events]
                    device_stamped = [event["id"] for event, source in zip(events, batch.events) if source.clock == "device"]
                    hold = self.device_clock_hold() if device_stamped else None
                    added = self.outbox.add(events, batch.checkpoint, held_ids=device_stamped, hold=hold)
                    report.added += added.added
                    report.duplicates += added.duplicates
                    report.dropped += added.dropped
                    report.refused += len(added.refused)
                    report.problems += batch.problems
                    for problem in batch.problems:
                        log.warning("connector %s: %s", name, problem)
                    for reason in added.refused:
                        log.warning("connector %s: an event was refused: %s", name, reason)
                    if added.dropped:
                        log.error("outbox full: %d event(s) dropped (%s)", added.dropped, self.outbox.drop_policy)
            except Exception as exc:  # noqa: BLE001 - one connector's fault must not stop the others
                # Only the kind of error: its text could quote source data.
                log.error("connector %s failed (%s); trying again at the next poll", name, type(exc).__name__)
        return report

    # -- running --------------------------------------------------------------------------------------

    def run(self, install_signal_handlers: bool = True) -> None:
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop())
        log.info("collector %s for unit %s starting with %d connector(s)", self.config.device, self.config.unit, len(self.connectors))
        self.publisher.start()
        next_poll = self._clock()
        try:
            while not self._stop.is_set():
                self.check_clock()
                if self._clock() >= next_poll:
                    self.collect_once()
                    next_poll = self._clock() + self.config.poll_interval_s
                self._wake.clear()
                self.publisher.tick()
                now = self._clock()
                self._wake.wait(max(0.0, min(TICK_S, next_poll - now, self.publisher.next_due() - now)))
        finally:
            self.publisher.stop()
            self.outbox.close()
            log.info("collector stopped")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


def _cached(probe: Callable[[], bool | None], interval_s: float, clock: Callable[[], float]) -> Callable[[], bool | None]:
    """`probe` (a subprocess: `timedatectl`) asked at most every `interval_s`."""
    last: list[Any] = [None, None]  # [asked at, answer]

    def cached() -> bool | None:
        now = clock()
        if last[0] is None or now - last[0] >= interval_s:
            last[:] = [now, probe()]
        return last[1]

    return cached
