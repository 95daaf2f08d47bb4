"""Offline bundles built by `packaging/build.py` for this machine, installed with `install.sh --stage-only`
(no network: `--no-index`, the bundle's wheels pinned by hash), and a TLS broker for them to talk to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
BUILD = ROOT / "packaging" / "build.py"


def build_bundle(out: Path, version: str | None = None) -> Path:
    command = [sys.executable, str(BUILD), "--arch", "host", "--out", str(out)]
    if version is not None:
        command += ["--version", version]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.splitlines()[0])


def unpack(bundle: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle) as tar:
        tar.extractall(into, filter="tar")
    (top,) = into.iterdir()
    return top


def stage(unpacked: Path, prefix: Path) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    """`install.sh --stage-only`: the version's venv under PREFIX/versions, nothing else touched."""
    result = subprocess.run(
        [str(unpacked / "install.sh"), "--stage-only", "--prefix", str(prefix), "--python", base_python()],
        capture_output=True,
        text=True,
        timeout=600,
        env=_without_venv(),
        cwd=prefix.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def base_python() -> str:
    """The interpreter the tests' venv was made from (a device has no venv of ours around python3)."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _without_venv() -> dict[str, str]:
    """The tests' own venv must not leak into the installed one."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    return env


def installed_env() -> dict[str, str]:
    return _without_venv()


def make_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a broker certificate for 127.0.0.1 signed by it (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vardkoll test ca", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem"
    )
    return folder / "ca.pem", folder / "broker.pem", folder / "broker.key"


class TopicWatcher:
    """Every message under `topic` (a filter), from a TLS (or plain) broker on 127.0.0.1."""

    def __init__(self, port: int, topic: str, ca: Path | None = None) -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if ca is not None:
            self._client.tls_set(ca_certs=str(ca))
        self._client.on_message = lambda client, userdata, message: self._keep(message.topic, bytes(message.payload))
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic, qos=1)
        self._client.loop_start()
        assert subscribed.wait(10), "the watcher could not subscribe"

    def _keep(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.messages.append((topic, payload))

    def on(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [payload for topic, payload in self.messages if topic.endswith(suffix)]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def load_build_module() -> Any:
    """packaging/build.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("vardkoll_packaging_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_update_keys(folder: Path) -> tuple[Path, Path]:
    """An Ed25519 key pair as `packaging/sign.py keygen` makes it: (private .key, folder of trusted .pub)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "sign.py"), "keygen", "--out", str(folder / "release")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    trusted = folder / "trusted"
    trusted.mkdir()
    shutil.copy(folder / "release.pub", trusted / "release.pub")
    return folder / "release.key", trusted


def sign_bundle(bundle: Path, key: Path, url: str) -> dict[str, Any]:
    """`packaging/sign.py sign`: the `update` section to push."""
    import json

    result = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "sign.py"), "sign", str(bundle), "--key", str(key), "--url", url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(Path(result.stdout.strip()).read_text())["update"]


class DeviceCollector:
    """`PREFIX/current/bin/vardkoll collector run` as a process, restarted the way systemd would (the
    installer's `restart`): `current` is resolved at each start, so a switched version runs next."""

    def __init__(self, prefix: Path, config: Path) -> None:
        self.prefix, self.config = prefix, config
        self.log_path = config.with_name("device.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.prefix / "current" / "bin" / "vardkoll"), "collector", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=installed_env(),
                cwd=self.config.parent,
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
