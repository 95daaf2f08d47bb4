"""The offline bundle (packaging/build.py) installs with no network and runs: the same bundle type a
Raspberry Pi gets, built for this machine, installed with `--no-index` from its own pinned wheels."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import orjson

from tests.collector_agent.collector_process import write_config
from tests.collector_agent.test_callback_csv import FIXTURE, FIXTURE_COLUMNS
from tests.integration.mqtt_helpers import wait_until

from .bundles import TopicWatcher, installed_env, make_tls_files

SERVER_ONLY = ("fastapi", "sqlmodel", "sqlalchemy", "uvicorn", "psycopg", "alembic")


def test_the_bundle_pins_every_wheel_it_ships_and_nothing_of_the_server(unpacked_bundle: Path):
    wheels = {path.name for path in (unpacked_bundle / "wheels").glob("*.whl")}
    requirements = (unpacked_bundle / "requirements.txt").read_text().splitlines()
    assert len(requirements) == len(wheels) - 1  # pip itself runs from its wheel and is not installed
    assert all(" --hash=sha256:" in line for line in requirements)
    assert any(line.startswith("vardkoll[collector,bridge]==") for line in requirements)
    assert not [name for name in wheels if name.lower().startswith(SERVER_ONLY)]
    for part in (
        "install.sh",
        "units/vardkoll-collector.service",
        "units/vardkoll-bridge.service",
        "units/vardkoll-collector-update.path",
        "journald/vardkoll.conf",
        "udev/99-vardkoll-serial.rules",
        "examples/collector.example.toml",
        "examples/bridge.example.toml",
    ):
        assert (unpacked_bundle / part).is_file(), part
    assert json.loads((unpacked_bundle / "BUNDLE.json").read_text())["product"] == "vardkoll-collector"


def test_the_offline_install_has_the_collector_and_the_bridge_but_not_the_server(installed: Path):
    python = installed / "bin" / "python"
    ok = subprocess.run(
        [str(python), "-c", "import vardkoll.collector.agent, vardkoll.firmware_bridge.bridge, serial, cryptography, paho.mqtt"],
        capture_output=True,
        text=True,
        env=installed_env(),
        cwd=installed,
    )
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([str(python), "-c", "import fastapi"], capture_output=True, text=True, env=installed_env(), cwd=installed)
    assert "No module named 'fastapi'" in missing.stderr
    assert (installed / ".complete").read_text().strip() == installed.name


def test_the_installed_collector_checks_and_runs_against_a_tls_broker(installed: Path, tmp_path: Path, mosquitto_factory):
    ca, cert, key = make_tls_files(tmp_path / "tls")
    broker = mosquitto_factory([f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"])
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(FIXTURE, exports / FIXTURE.name)
    config = write_config(
        tmp_path / "state",
        f"mqtts://127.0.0.1:{broker.port}",
        mqtt={"ca_file": ca},
        connectors=[{"type": "callback_csv", "folder": exports, "settle_s": 0, "columns": FIXTURE_COLUMNS}],
    )
    vardkoll = str(installed / "bin" / "vardkoll")

    doctor = subprocess.run(
        [vardkoll, "collector", "doctor", "--config", str(config), "--timeout-s", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=installed_env(),
        cwd=tmp_path,
    )
    assert f"OK      Broker: ansluten till 127.0.0.1:{broker.port} med TLS" in doctor.stdout, doctor.stdout + doctor.stderr
    assert "Traceback" not in doctor.stderr

    watcher = TopicWatcher(broker.port, "vardkoll/v1/#", ca)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    env = {**installed_env(), "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    log = open(tmp_path / "collector.log", "wb")
    process = subprocess.Popen([vardkoll, "collector", "run", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    notes: list[str] = []
    try:

        def heard(message: str) -> bool:
            try:
                notes.extend(notify.recv(4096).decode().splitlines())
            except socket.timeout:
                pass
            return message in notes

        assert wait_until(lambda: heard("READY=1"), 30), (tmp_path / "collector.log").read_text()
        assert wait_until(lambda: watcher.on("/events") and watcher.on("/status"), 30), (tmp_path / "collector.log").read_text()
        beat = orjson.loads(watcher.on("/status")[-1])
        assert beat["status"] == "online" and beat["version"] == installed.name
        events = orjson.loads(watcher.on("/events")[0])["events"]
        assert {event["type"] for event in events} >= {"call.offered"}
        assert "19121212" not in watcher.on("/events")[0].decode()  # the export's personal number column is never read
        notes.clear()
        assert wait_until(lambda: heard("WATCHDOG=1"), 5)  # pinged at least every half interval (0.5 s here)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert wait_until(lambda: heard("STOPPING=1"), 2)
        assert wait_until(lambda: watcher.on("/status")[-1] == b"offline", 5)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
        notify.close()
        watcher.close()
