"""Real Mosquitto 2 brokers for tests, each on a free loopback port with its own config and persistence.

Settings that matter for tests that count messages (see docs in /work/shared/research/platform.md):
- `max_queued_messages 0`: Mosquitto otherwise drops QoS 1 messages for a slow subscriber past 1000
  queued ones while the publisher still gets every PUBACK;
- `user root` when the tests run as root: Mosquitto would switch to user `mosquitto` and then fail to
  write its persistence file in a root-owned folder.

With `dynsec=(admin, password)` the broker runs Mosquitto's dynamic security plugin, as production does
(deploy/broker/): its config file is made by `mosquitto_ctrl dynsec init`, anonymous clients are refused,
and only the admin account exists until something creates more.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from glob import glob
from pathlib import Path
from typing import Iterable

from . import free_port, port_accepts, running_as_root, tail, wait_until

HOST = "127.0.0.1"


def find_binary() -> str | None:
    if os.access("/usr/sbin/mosquitto", os.X_OK):
        return "/usr/sbin/mosquitto"
    return shutil.which("mosquitto")


def missing_reason() -> str | None:
    if find_binary() is None:
        return "Mosquitto is not installed (no /usr/sbin/mosquitto or mosquitto on PATH)"
    return None


def find_dynsec_plugin() -> str | None:
    for candidate in [
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
        *sorted(glob("/usr/lib/*/mosquitto_dynamic_security.so")),
        "/usr/lib/mosquitto_dynamic_security.so",
        "/usr/local/lib/mosquitto_dynamic_security.so",
    ]:
        if os.path.isfile(candidate):
            return candidate
    return None


def dynsec_missing_reason() -> str | None:
    if find_binary() is None:
        return missing_reason()
    if find_dynsec_plugin() is None:
        return "Mosquitto's dynamic security plugin is not installed (no mosquitto_dynamic_security.so under /usr/lib)"
    if shutil.which("mosquitto_ctrl") is None:
        return "mosquitto_ctrl is not installed (package mosquitto-clients)"
    return None


class BrokerError(RuntimeError):
    pass


class Broker:
    """One `mosquitto -c CONF` process. Keeps its port and persistence folder across `restart()`."""

    def __init__(self, binary: str, folder: Path, extra_config: Iterable[str] = (), dynsec: tuple[str, str] | None = None) -> None:
        self.binary = binary
        self.folder = folder
        self.host = HOST
        self.port = 0
        self.extra_config = list(extra_config)
        self.persistence_dir = folder / "persistence"
        self.config_path = folder / "mosquitto.conf"
        self.log_path = folder / "mosquitto.log"
        self.dynsec_admin = dynsec  # (username, password) of the dynsec admin account, or None
        self.dynsec_path = folder / "dynamic-security.json"
        self._process: subprocess.Popen[bytes] | None = None
        if dynsec is not None:
            self._init_dynsec(*dynsec)

    def __repr__(self) -> str:
        return f"<Broker {self.url} pid={self.pid} running={self.running}>"

    @property
    def url(self) -> str:
        """In the form `VARDKOLL_MQTT_URL` takes."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> "Broker":
        """Start on a free port (the first time) or on the same port as before (after kill or stop)."""
        if self.running:
            raise BrokerError(f"{self!r} is already running")
        self.persistence_dir.mkdir(parents=True, exist_ok=True)
        first_start = self.port == 0
        for attempt in range(attempts if first_start else 1):
            if first_start:
                self.port = free_port(self.host)
            self._write_config()
            if self._launch():
                return self
            if first_start and attempt + 1 < attempts and self._port_taken():
                continue
            break
        raise BrokerError(f"mosquitto did not start on {self.host}:{self.port}:\n{tail(self.log_path)}")

    def kill(self) -> None:
        """SIGKILL: the broker dies without saving its persistence file (like a crash or power loss)."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: a clean shutdown that saves the persistence file; SIGKILL if it takes too long."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> "Broker":
        """Start again on the same port with the same persistence folder (stopping it first if it runs)."""
        self.stop()
        return self.start()

    # -- details -------------------------------------------------------------------------------------

    def _init_dynsec(self, admin: str, password: str) -> None:
        ctrl = shutil.which("mosquitto_ctrl")
        if ctrl is None:
            raise BrokerError(dynsec_missing_reason() or "mosquitto_ctrl is not installed")
        done = subprocess.run([ctrl, "dynsec", "init", str(self.dynsec_path), admin, password], capture_output=True, text=True, timeout=30)
        if done.returncode != 0 or not self.dynsec_path.exists():
            raise BrokerError(f"mosquitto_ctrl dynsec init failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def _write_config(self) -> None:
        lines = ["# written by tests/support/mosquitto.py"]
        if self.dynsec_admin is not None:
            plugin = find_dynsec_plugin()
            if plugin is None:
                raise BrokerError(dynsec_missing_reason() or "no dynamic security plugin")
            lines += ["per_listener_settings false", "allow_anonymous false", f"plugin {plugin}", f"plugin_opt_config_file {self.dynsec_path}"]
        else:
            lines.append("allow_anonymous true")
        lines += [
            f"listener {self.port} {self.host}",
            "max_queued_messages 0",  # unlimited: never drop QoS 1 messages for a slow subscriber
            "max_queued_bytes 0",
            "max_inflight_messages 100",
            "set_tcp_nodelay true",
            "persistence true",
            f"persistence_location {self.persistence_dir}/",
            "persistence_file mosquitto.db",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if running_as_root():
            lines.append("user root")
        lines.extend(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def _launch(self) -> bool:
        log = open(self.log_path, "ab")
        try:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
            )
        finally:
            log.close()
        up = wait_until(lambda: not self.running or port_accepts(self.host, self.port), timeout_s=15)
        if up and self.running:
            return True
        self.kill()
        return False

    def _port_taken(self) -> bool:
        text = tail(self.log_path, 10).lower()
        return "address already in use" in text or "error: unable to start any listening sockets" in text


class BrokerFactory:
    """Starts brokers on demand in folders under `root`; `close()` stops every one of them."""

    def __init__(self, root: Path) -> None:
        binary = find_binary()
        if binary is None:
            raise BrokerError(missing_reason() or "mosquitto is not installed")
        self.binary = binary
        self.root = root
        self.brokers: list[Broker] = []

    def __call__(self, extra_config: Iterable[str] = (), dynsec: tuple[str, str] | None = None) -> Broker:
        """One more broker; `dynsec=(admin, password)` runs it with the dynamic security plugin."""
        folder = self.root / f"broker{len(self.brokers)}"
        folder.mkdir(parents=True)
        broker = Broker(self.binary, folder, extra_config, dynsec)
        self.brokers.append(broker)
        return broker.start()

    def close(self) -> None:
        for broker in self.brokers:
            broker.stop()
