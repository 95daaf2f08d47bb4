"""The bridge as a service: the bridge's config made to fit the collector's, and `BridgeService`, which
runs the bridge into the collector's durable outbox (and, with `publish`, the collector agent that sends it).

This is the runtime behind `vardkoll bridge run` (`vardkoll/bridge_cli.py` only parses the command line).
The bridge always uses the collector's pseudonym secret (`pseudonyms.secret_file`) and the collector's
device id as the events' `device`: a `pseudonym_key`/`pseudonym_key_file` in the bridge config is
ignored (with a warning), and every configured device must belong to the collector's unit. Case
pseudonyms follow the collector's key schedule (its period book, `collector/key_schedule.py`).

On `stop()` the serial ports stop first (no new presses are acknowledged), then the collector (which says
`offline` and closes the outbox): a press in flight at that moment stays on its device and is sent again
after the next start.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import msgspec

from vardkoll.collector.agent import Agent, open_period_book
from vardkoll.collector.clock import standalone_hold
from vardkoll.collector.config import CollectorConfig
from vardkoll.collector.config import ConfigError as CollectorConfigError
from vardkoll.collector.config import load_config as load_collector_config
from vardkoll.collector.outbox import Outbox
from vardkoll.collector.pseudonyms import load_or_create_secret

from .bridge import Bridge, OutboxSink
from .config import BridgeConfig, ConfigError, parse_config, read_document

log = logging.getLogger("vardkoll.firmware_bridge.service")


class BridgeSetupError(ValueError):
    """The bridge and collector configs do not fit together; the message says what to change."""


def bridge_config_for_collector(data: dict[str, Any], collector: CollectorConfig) -> BridgeConfig:
    """The bridge config (a parsed TOML/JSON document) made to fit `collector` (a `CollectorConfig`).

    The collector's secret is the key (so the bridge's own key settings are dropped), `event_device` is
    the collector's device id, and every device must be in the collector's unit (the outbox refuses
    events for another unit, so such a device could never deliver anything)."""
    data = dict(data)
    if data.pop("pseudonym_key", None) is not None or data.pop("pseudonym_key_file", None) is not None:
        log.warning("bridge config: pseudonym_key / pseudonym_key_file ignored; the collector's secret (pseudonyms.secret_file) is used")
    # Validation wants exactly one key setting; the key itself is passed to Bridge explicitly.
    data["pseudonym_key_file"] = str(collector.pseudonyms.secret_file)
    try:
        config = parse_config(data)
    except ConfigError as exc:
        raise BridgeSetupError(str(exc)) from None
    if config.event_device not in (None, collector.device):
        raise BridgeSetupError(f"bridge config: event_device {config.event_device!r} differs from the collector's device {collector.device!r}; remove it")
    for index, device in enumerate(config.devices):
        if device.unit != collector.unit:
            raise BridgeSetupError(
                f"bridge config: devices[{index}] ({device.device_id}) is in unit {device.unit}, but the collector serves unit {collector.unit}"
            )
    return msgspec.structs.replace(config, event_device=collector.device)


class BridgeService:
    """The bridge feeding the collector's outbox, and (with `publish`) the collector agent sending it.

    `start()` / `stop()` for embedding and tests; `run()` blocks until a signal or `stop()`."""

    def __init__(
        self, bridge_config: BridgeConfig, collector_config: CollectorConfig, *, publish: bool = True, agent_options: dict[str, Any] | None = None
    ) -> None:
        self.collector_config = collector_config
        self.agent = Agent(collector_config, **(agent_options or {})) if publish else None
        key = load_or_create_secret(collector_config.pseudonyms.secret_file)
        # The key schedule is always on: the bridge keys its cases with the collector's book.
        self.periods = self.agent.pipeline.periods if self.agent is not None else open_period_book(collector_config, key)
        if self.agent is not None:
            self.outbox = self.agent.outbox
        else:
            box = collector_config.outbox
            self.outbox = Outbox(
                box.path,
                unit=collector_config.unit,
                device=collector_config.device,
                max_events=box.max_events,
                max_bytes=box.max_bytes,
                drop_policy=box.drop_policy,
            )
        hold = self.agent.device_clock_hold if self.agent is not None else standalone_hold(collector_config.clock)
        self.bridge = Bridge(bridge_config, OutboxSink(self.outbox, hold=hold), key=key, periods=self.periods)
        self._stop = threading.Event()
        self._agent_thread: threading.Thread | None = None
        self._started = False
        self._stopped = False

    @classmethod
    def from_files(cls, bridge_path: str | Path, collector_path: str | Path, **kwargs: Any) -> "BridgeService":
        try:
            collector = load_collector_config(collector_path)
        except CollectorConfigError as exc:
            raise BridgeSetupError(str(exc)) from None
        try:
            document = read_document(bridge_path)
        except ConfigError as exc:
            raise BridgeSetupError(str(exc)) from None
        config = bridge_config_for_collector(document, collector)
        return cls(config, collector, **kwargs)

    def start(self, ports: list[str] | tuple[str, ...] | None = None) -> None:
        if self._started:
            return
        self._started = True
        if self.agent is not None:
            self._agent_thread = threading.Thread(target=self.agent.run, kwargs={"install_signal_handlers": False}, name="collector", daemon=True)
            self._agent_thread.start()
        self.bridge.start(ports)
        log.info(
            "bridge running: %d port(s), %d device(s), outbox %s%s",
            len(ports if ports is not None else self.bridge.config.ports),
            len(self.bridge.config.devices),
            self.outbox.path,
            "" if self.agent is not None else " (not publishing)",
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ports first (nothing new is acknowledged), then the collector (offline, outbox closed)."""
        self._stop.set()
        if self._stopped:
            return
        self._stopped = True
        self.bridge.stop(timeout_s)
        if self.agent is not None:
            self.agent.stop()
            if self._agent_thread is not None:
                self._agent_thread.join(timeout_s)
        else:
            self.outbox.close()
            if self.periods is not None:
                self.periods.close()
        log.info("bridge stopped: %s", self.bridge.stats.snapshot())

    def request_stop(self) -> None:
        """Signal-safe: `run()` notices and stops."""
        self._stop.set()

    def run(self, install_signal_handlers: bool = True) -> None:
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.request_stop())
        self.start()
        try:
            while not self._stop.wait(0.5):
                if self._agent_thread is not None and not self._agent_thread.is_alive():
                    log.error("the collector stopped unexpectedly; stopping the bridge")
                    break
        finally:
            self.stop()
