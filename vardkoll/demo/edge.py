"""The demo's collectors: enrolled with a one-time code, then run as child processes and kept running.

Each clinic's collector is its own process running the production command (`vardkoll collector run`,
or `vardkoll bridge run` where serial devices are attached), so that killing one is what killing a
collector at a clinic is: its outbox and connector checkpoints on disk carry it over the restart. Like
systemd's `Restart=on-failure`, a collector that dies (a signal, a non-zero exit) is started again after
a second; one that stops cleanly (Ctrl-C reaches the whole process group) is not.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from vardkoll.collector.enrollment import enroll

log = logging.getLogger("vardkoll.demo")
RESTART_AFTER_S = 1.0

# What an installer would tune for a clinic on a fast local network (docs/collector.md): poll often, no
# start-up jitter (one clinic, not a region reconnecting), drain the weeks of history quickly, and a
# heartbeat often enough for Installationsvy to move while you watch.
TUNING_TOP = "poll_interval_s = 0.5\n"
TUNING_TABLES = """
[publisher]
start_jitter_s = 0.2
max_events_per_s = 5000
max_inflight_batches = 8
resend_after_s = 10
heartbeat_interval_s = 5
"""


def enroll_collector(base_url: str, admin_token: str, unit: str, device: str, folder: Path, connectors: str, mqtt_v5: bool = True) -> Path:
    """Ask for a one-time code as an installer would (`POST /units/{unit}/enrollment-codes`), redeem it
    with `vardkoll collector enroll`'s own code, then add the tuning and the clinic's connectors."""
    response = httpx.post(
        f"{base_url}/api/v1/units/{unit}/enrollment-codes",
        json={"device": device, "valid_hours": 1},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    config = folder / "collector.toml"
    enroll(base_url, response.json()["code"], device=device, config_path=config, state_dir=folder / "state")
    text = config.read_text()
    if not mqtt_v5:  # the in-process fallback broker speaks MQTT 3.1.1 only
        text = text.replace("[mqtt]\n", '[mqtt]\nprotocol = "3.1.1"\n', 1)
    config.write_text(TUNING_TOP + text + TUNING_TABLES + connectors)
    return config


def _die_with_parent() -> None:
    """In the child, before exec: a SIGTERM when the demo itself dies, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class CollectorProcess:
    unit: str
    command: list[str]
    log_path: Path
    arguments: list[str] = field(default_factory=list)  # what follows `vardkoll` in `command`, for the printout
    process: subprocess.Popen | None = None
    restarts: int = 0
    on_change: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        self.on_change()


class Collectors:
    """Starts the collector processes, restarts one that dies, and stops them all."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.processes: list[CollectorProcess] = []
        self._report = report
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-collectors", daemon=True)

    def add(self, process: CollectorProcess) -> None:
        self.processes.append(process)

    def start(self) -> None:
        for process in self.processes:
            process.start()
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.25):
            for process in self.processes:
                if process.process is None or process.process.poll() is None or process.process.returncode == 0:
                    continue
                code = process.process.returncode
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                self._report(f"collector of {process.unit} (pid {process.pid}) stopped ({how}); starting it again")
                time.sleep(RESTART_AFTER_S)
                if self._stopping.is_set():
                    return
                process.restarts += 1
                process.start()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to each collector still running (Ctrl-C may have reached them already), then wait."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for process in self.processes:
            if process.process is not None and process.process.poll() is None:
                process.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            if process.process is None:
                continue
            try:
                process.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("collector of %s did not stop within %.0f s; killing it", process.unit, timeout_s)
                process.process.kill()
                process.process.wait(5)


def _vardkoll() -> list[str]:
    """The `vardkoll` command of this installation (the console script beside this Python, else the same via -c)."""
    script = Path(sys.executable).with_name("vardkoll")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from vardkoll.cli import main; main()"]


def collector_arguments(config: Path) -> list[str]:
    return ["collector", "run", "--config", str(config)]


def bridge_arguments(bridge_config: Path, collector_config: Path) -> list[str]:
    return ["bridge", "run", "--config", str(bridge_config), "--collector-config", str(collector_config)]


def command(arguments: list[str]) -> list[str]:
    return _vardkoll() + arguments
