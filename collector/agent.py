"""The collector agent: connectors → pipeline (pseudonyms) → outbox → publisher, in one loop.

`Agent.run()` runs until SIGTERM or SIGINT (or `stop()`), then says `offline` and closes the outbox.
Connectors are polled every `poll_interval_s`. The publisher ticks after every poll, at least every
`TICK_S`, and at once when an acknowledgement frees a place for the next batch (so the drain is not
paced by the loop); an idle collector wakes about once a second.
"""

from __future__ import annotations

import logging
import queue
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from .clock import ClockGuard, ClockReading, ClockState, HoldStamp, make_clock_reader, ntp_synchronised
from .config import CollectorConfig
from .connectors import Connector, ConnectorContext, build_connector
from .key_schedule import PeriodBook
from .lookup import LookupMap
from .outbox import Outbox
from .pipeline import Pipeline
from . import remote_config
from .publisher import MqttClient, Publisher, make_paho_client
from .pseudonyms import Pseudonymiser, load_or_create_secret
from .systemd_notify import ServiceNotifier
from .updates import Updater

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
        client_factory: Callable[[CollectorConfig], MqttClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        clock_state: Callable[[], bool | None] = ntp_synchronised,
        clock_reader: Callable[[], ClockReading] | None = None,
        notifier: ServiceNotifier | None = None,
    ) -> None:
        self.local_config = config  # the file's config; remote versions are laid over it
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        self._clock_state = clock_state
        self._client_factory = client_factory or (lambda cfg: make_paho_client(cfg.unit, cfg.device, cfg.mqtt))
        self.clock_guard = ClockGuard(config.clock.floor, config.clock.max_jump_s)
        self._read_clock = clock_reader or make_clock_reader(_cached(clock_state, config.clock.ntp_check_interval_s, clock))
        self._held_waiting = True  # until the outbox was asked
        self._clock_lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and by the publisher when it can send more
        self.notifier = notifier or ServiceNotifier()  # systemd's READY/WATCHDOG; a no-op outside systemd
        lookup = LookupMap(config.lookup_file, config.lookup.retention_days) if config.lookup.enabled else None
        secret = load_or_create_secret(config.pseudonyms.secret_file)
        self.pipeline = Pipeline(Pseudonymiser(secret), config.unit, config.device, lookup, open_period_book(config, secret))
        self._book_pruned_at: float | None = None
        box = config.outbox
        self.outbox = Outbox(box.path, unit=config.unit, device=config.device, max_events=box.max_events, max_bytes=box.max_bytes, drop_policy=box.drop_policy)
        self._remote_inbox: queue.Queue[bytes] = queue.Queue(maxsize=8)
        self.remote_state = remote_config.load_state(config.remote_state_file) if config.remote_config.enabled else remote_config.RemoteState()
        self.updater = Updater(
            config.outbox.path.parent, config.software_update.trusted_keys, collector_version(), enabled=config.software_update.enabled, ping=self.notifier.ping
        )
        self.config = self._startup_config(config)
        self.connectors: dict[str, Connector] = {}
        self.publisher: Publisher
        self._build(self.config, client)

    # -- building from a config -----------------------------------------------------------------------

    def _startup_config(self, local: CollectorConfig) -> CollectorConfig:
        """The file's config with the last good remote version over it; a trial cut short counts as failed."""
        state = self.remote_state
        if not local.remote_config.enabled:
            return local
        if state.pending is not None:
            log.error("remote config version %s was being tried when the collector stopped; using the last good config", state.pending.version)
            self._refuse(state.pending.version, "the collector stopped while trying this version", "rolled_back")
        if state.applied is not None:
            try:
                return remote_config.merge(local, state.applied)
            except remote_config.RemoteConfigRefused as exc:
                log.error("the stored remote config no longer fits the local config (%s); using the local config", exc)
        return local

    def _build(self, config: CollectorConfig, client: MqttClient | None = None) -> None:
        self.connectors = {}
        for entry in config.connectors:
            context = ConnectorContext(entry.instance_name, self._checkpoint_lookup(entry.instance_name), self._wall_clock)
            self.connectors[entry.instance_name] = build_connector(entry.type, entry.settings, context)
        self.publisher = Publisher(
            self.outbox,
            config.unit,
            config.device,
            config.publisher,
            config.mqtt,
            client=client if client is not None else self._client_factory(config),
            clock=self._clock,
            wall_clock=lambda: datetime.fromtimestamp(self._wall_clock(), timezone.utc),
            rng=self._rng,
            clock_state=self._clock_state,
            clock_report=self.clock_guard.heartbeat,
            version=collector_version(),
            on_config=self._receive_remote if config.remote_config.enabled else None,
            status_extra=lambda: {"config": self.remote_state.status(), "update": self.updater.status()},
        )
        self.publisher.on_progress = self._wake.set

    def _teardown(self) -> None:
        self.publisher.stop()
        for connector in self.connectors.values():
            connector.close()

    def _checkpoint_lookup(self, source: str) -> Callable[[str], str | None]:
        return lambda key: self.outbox.checkpoint(source, key)

    # -- remote config versions -----------------------------------------------------------------------

    def _receive_remote(self, payload: bytes) -> None:
        """From paho's thread: hand the document to the agent's loop (the newest wins when it lags)."""
        try:
            self._remote_inbox.put_nowait(payload)
        except queue.Full:
            try:
                self._remote_inbox.get_nowait()
            except queue.Empty:
                pass
            self._remote_inbox.put_nowait(payload)
        self._wake.set()

    def _save_remote_state(self) -> None:
        remote_config.save_state(self.local_config.remote_state_file, self.remote_state)

    def _refuse(self, version: str, reason: str, outcome: str) -> None:
        state = self.remote_state
        state.last_seen, state.outcome, state.pending = version, outcome, None
        state.rejected_version, state.rejected_reason = version, reason
        self._save_remote_state()

    def apply_remote(self, payload: bytes) -> str:
        """Apply one config document if its version is new: `applied`, `unchanged`, `refused` or `rolled_back`.

        The new config is tried by connecting to the broker with it; without a connection within
        `apply_timeout_s` the previous config is restored and the refusal reported in the heartbeat."""
        try:
            remote = remote_config.parse_document(payload)
        except remote_config.RemoteConfigRefused as exc:
            log.error("remote config ignored: %s", exc)
            return "refused"
        state = self.remote_state
        if remote.version == state.last_seen:
            return "unchanged"
        try:
            candidate = remote_config.merge(self.local_config, remote)
        except remote_config.RemoteConfigRefused as exc:
            log.error("remote config refused: %s", exc)
            self._refuse(remote.version, str(exc), "refused")
            self.publisher.publish_heartbeat()
            return "refused"
        state.pending = remote
        self._save_remote_state()
        previous = self.config
        timeout_s = self.local_config.remote_config.apply_timeout_s
        log.info("trying remote config version %s (rollback unless the broker answers within %.0f s)", remote.version, timeout_s)
        self._teardown()
        try:
            self._build(candidate)
            self.publisher.start()
            connected = self._wait_connected(timeout_s)
        except Exception as exc:  # noqa: BLE001 - a config that cannot even be built is rolled back too
            log.error("remote config version %s could not be started (%s)", remote.version, type(exc).__name__)
            connected = False
        if connected:
            self.config = candidate
            state.applied, state.last_seen, state.outcome, state.pending = remote, remote.version, "applied", None
            state.rejected_version = state.rejected_reason = None
            self._save_remote_state()
            log.info("remote config version %s applied", remote.version)
            if "update" in remote.overrides:
                self.updater.consider(remote.overrides["update"])
            self.publisher.publish_heartbeat()
            return "applied"
        self._teardown()
        reason = "the collector stopped while trying this version" if self._stop.is_set() else f"no broker connection within {timeout_s:.0f} s; rolled back"
        self._refuse(remote.version, reason, "rolled_back")
        self._build(previous)
        self.publisher.start()  # the heartbeat after connecting reports the rollback
        log.error("remote config version %s rolled back: no broker connection within %.0f s", remote.version, timeout_s)
        return "rolled_back"

    def _wait_connected(self, timeout_s: float) -> bool:
        deadline = self._clock() + timeout_s
        while not self.publisher.connected:
            if self._stop.is_set() or self._clock() >= deadline:
                return False
            self.notifier.ping()  # a trial of up to apply_timeout_s is not a hang
            self._stop.wait(0.05)
        return True

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
                log.error(
                    "%d held event(s) were stamped before the last reboot by a wrong clock and cannot be corrected; they stay held (dump-outbox shows them)",
                    released.stranded,
                )
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
        self._prune_period_book()
        for name, connector in self.connectors.items():
            try:
                for batch in connector.poll():
                    events = [self.pipeline.to_wire(name, source) for source in batch.events]
                    self.pipeline.flush()  # the periods given out are on disk before their events are in the outbox
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

    def _prune_period_book(self) -> None:
        if self.pipeline.periods is None:
            return
        now = self._wall_clock()
        if self._book_pruned_at is None or now - self._book_pruned_at >= 86400:
            self._book_pruned_at = now
            self.pipeline.periods.prune(datetime.fromtimestamp(now, timezone.utc))

    # -- running --------------------------------------------------------------------------------------

    def run(self, install_signal_handlers: bool = True) -> None:
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop())
        log.info("collector %s for unit %s starting with %d connector(s)", self.config.device, self.config.unit, len(self.connectors))
        self.publisher.start()
        self.notifier.ready(f"collector {self.config.device} running")
        next_poll = self._clock()
        try:
            while not self._stop.is_set():
                self.notifier.ping()
                self.check_clock()
                if self._clock() >= next_poll:
                    self.collect_once()
                    next_poll = self._clock() + self.config.poll_interval_s
                self._wake.clear()
                self._apply_waiting_remote()
                if self.publisher.connected:
                    self.updater.confirm_trial()  # a new version tried by the installer has reached the broker
                self.publisher.tick()
                now = self._clock()
                self._wake.wait(max(0.0, min(TICK_S, next_poll - now, self.publisher.next_due() - now)))
        finally:
            self.notifier.stopping()
            self._teardown()
            self.outbox.close()
            if self.pipeline.periods is not None:
                self.pipeline.periods.close()
            self.notifier.close()
            log.info("collector stopped")

    def _apply_waiting_remote(self) -> None:
        try:
            payload = self._remote_inbox.get_nowait()
        except queue.Empty:
            return
        self.apply_remote(payload)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


def open_period_book(config: CollectorConfig, secret: bytes) -> PeriodBook:
    """The key schedule's book for this collector (docs/privacy.md). Opened before the outbox: a device
    whose outbox is older than its book made pseudonyms before the schedule and keeps their key for
    what happened before it (`PeriodBook.open`, `upgraded`)."""
    upgraded = not config.periods_file.exists() and config.outbox.path.exists()
    return PeriodBook.open(config.periods_file, secret, ZoneInfo(config.pseudonyms.timezone), upgraded=upgraded)


def _cached(probe: Callable[[], bool | None], interval_s: float, clock: Callable[[], float]) -> Callable[[], bool | None]:
    """`probe` (a subprocess: `timedatectl`) asked at most every `interval_s`."""
    last: list[Any] = [None, None]  # [asked at, answer]

    def cached() -> bool | None:
        now = clock()
        if last[0] is None or now - last[0] >= interval_s:
            last[:] = [now, probe()]
        return last[1]

    return cached
