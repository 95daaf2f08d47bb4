"""The collector agent: connectors → pipeline (pseudonyms) → outbox → publisher, in one loop.

`Agent.run()` runs until SIGTERM or SIGINT (or `stop()`), then says `offline` and closes the outbox.
Connectors are polled every `poll_interval_s`; the publisher ticks several times a second.
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
from typing import Callable

from .config import CollectorConfig
from .connectors import Connector, ConnectorContext, build_connector
from .outbox import Outbox
from .pipeline import Pipeline
from . import remote_config
from .publisher import MqttClient, Publisher, make_paho_client, ntp_synchronised
from .pseudonyms import Pseudonymiser, load_or_create_secret

log = logging.getLogger("vardkoll.collector")

TICK_S = 0.2


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
    ) -> None:
        self.local_config = config  # the file's config; remote versions are laid over it
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        self._clock_state = clock_state
        self._client_factory = client_factory or (lambda cfg: make_paho_client(cfg.device, cfg.mqtt))
        self.pipeline = Pipeline(Pseudonymiser(load_or_create_secret(config.pseudonyms.secret_file)), config.unit, config.device)
        box = config.outbox
        self.outbox = Outbox(box.path, unit=config.unit, device=config.device, max_events=box.max_events, max_bytes=box.max_bytes, drop_policy=box.drop_policy)
        self._remote_inbox: queue.Queue[bytes] = queue.Queue(maxsize=8)
        self.remote_state = remote_config.load_state(config.remote_state_file) if config.remote_config.enabled else remote_config.RemoteState()
        self.config = self._startup_config(config)
        self.connectors: dict[str, Connector] = {}
        self.publisher: Publisher
        self._build(self.config, client)
        self._stop = threading.Event()

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
            version=collector_version(),
            on_config=self._receive_remote if config.remote_config.enabled else None,
            status_extra=lambda: {"config": self.remote_state.status()},
        )

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
            self.publisher.publish_heartbeat()
            log.info("remote config version %s applied", remote.version)
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
            self._stop.wait(0.05)
        return True

    # -- collecting -----------------------------------------------------------------------------------
    def collect_once(self) -> CollectReport:
        """Poll every connector once and store what they give (each batch with its checkpoint)."""
        report = CollectReport()
        for name, connector in self.connectors.items():
            try:
                for batch in connector.poll():
                    events = [self.pipeline.to_wire(name, source) for source in batch.events]
                    added = self.outbox.add(events, batch.checkpoint)
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
                if self._clock() >= next_poll:
                    self.collect_once()
                    next_poll = self._clock() + self.config.poll_interval_s
                self._apply_waiting_remote()
                self.publisher.tick()
                self._stop.wait(TICK_S)
        finally:
            self._teardown()
            self.outbox.close()
            log.info("collector stopped")

    def _apply_waiting_remote(self) -> None:
        try:
            payload = self._remote_inbox.get_nowait()
        except queue.Empty:
            return
        self.apply_remote(payload)

    def stop(self) -> None:
        self._stop.set()
