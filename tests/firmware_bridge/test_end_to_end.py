"""Simulated devices → bridge → the collector's real outbox and publisher → real Mosquitto → the server's
MQTT consumer: the server's figures equal `replay` of the events the presses stand for, and unplugging a
device mid-stream loses and doubles nothing (N presses, exactly N events stored on the server).

The bridge is wired to the collector by `vardkoll.firmware_bridge.service` (the code behind `vardkoll bridge
run`); the last test runs that command as a process and stops it with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from support import wait_until

from vardkoll.firmware_bridge.service import BridgeService
from vardkoll.firmware_bridge.simulator import SimulatedDevice

from .conftest import UNIT, device_entries

pytest.importorskip("serial", reason="pyserial is not installed (the `bridge` extra)")
pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (the `collector` extra)")
pytest.importorskip("sqlalchemy", reason="the server extra is not installed")

from vardkoll.server.metrics import Period  # noqa: E402
from vardkoll.server.replay import replay_path  # noqa: E402
from vardkoll.server.services import build_consumer, build_services  # noqa: E402
from vardkoll.server.settings import ServerSettings  # noqa: E402
from vardkoll.server.storage.tables import StoredEvent  # noqa: E402

COLLECTOR_DEVICE = "vc-bridge-test-01"
# A loaded 2-core machine: waits are on conditions, with deadlines far beyond what a quiet machine needs.
LONG_S = 60.0


@pytest.fixture
def server(database_url, mosquitto):
    services = build_services(ServerSettings(database_url=database_url, mqtt_url=mosquitto.url, dev=True), apply_migrations=True)
    consumer = build_consumer(services, client_id="test-server-bridge")
    consumer.start()
    assert consumer.connected.wait(LONG_S)
    yield services
    consumer.stop()


def stored_events(services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(StoredEvent))


def write_configs(tmp_path: Path, broker, ports: list[Path]) -> tuple[Path, Path]:
    state = tmp_path / "state"
    collector = tmp_path / "collector.toml"
    collector.write_text(
        f'unit = "{UNIT}"\n'
        f'device = "{COLLECTOR_DEVICE}"\n'
        "poll_interval_s = 0.5\n"
        f'[mqtt]\nurl = "{broker.url}"\n'
        f'[outbox]\npath = "{state / "outbox.db"}"\n'
        f'[pseudonyms]\nsecret_file = "{state / "pseudonym.key"}"\n'
        "[publisher]\nstart_jitter_s = 0.2\nresend_after_s = 2\nmax_resend_after_s = 4\n"
        "heartbeat_interval_s = 1\nbatch_events = 20\n"
    )
    document = {
        # The bridge's own key setting is ignored: the collector's secret is used.
        "pseudonym_key": "not-the-key-the-bridge-uses-0123",
        "ports": [str(port) for port in ports],
        "reopen_initial_s": 0.05,
        "reopen_max_s": 0.5,
        "devices": device_entries(),
    }
    bridge = tmp_path / "bridge.json"
    bridge.write_bytes(orjson.dumps(document))
    return bridge, collector


class RecordingSink:
    """Wraps the bridge's OutboxSink: remembers every event the outbox took (for replay)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, event: dict[str, Any]) -> None:
        self.inner.add(event)
        with self._lock:
            self.events.append(event)


def make_device(device_id: str, kind: str, link: Path) -> SimulatedDevice:
    device = SimulatedDevice(device_id, UNIT, kind, link, hello_retry_s=0.1, retransmit_s=0.5, store_id=0x5EED0000 + len(device_id))
    device.plug()
    return device


def assert_figures_equal_replay(services, dump: Path) -> dict:
    replayed = replay_path(dump)
    assert replayed["rejected"] == [] and replayed["duplicates"] == 0
    assert replayed["results"], "replay computed no figures"
    for expected in replayed["results"]:
        period = Period(date.fromisoformat(expected["from"]), date.fromisoformat(expected["to"]))
        figure = services.figures.figure(expected["unit"], expected["metric"], period)
        figure.pop("definition_version"), figure.pop("data")
        assert figure == expected, expected["metric"]
    return replayed


def test_dispenser_and_panel_through_bridge_collector_and_broker_give_replays_figures(tmp_path, server, mosquitto):
    links = tmp_path / "dev"
    links.mkdir()
    dispenser = make_device("disp-entre-1", "ticket_dispenser", links / "dispenser")
    panel = make_device("panel-1", "button_panel", links / "panel")
    bridge_path, collector_path = write_configs(tmp_path, mosquitto, [links / "dispenser", links / "panel"])
    service = BridgeService.from_files(bridge_path, collector_path, agent_options={"clock_state": lambda: None})
    recording = RecordingSink(service.bridge.sink)
    service.bridge.sink = recording
    service.start()
    presses = 0
    try:
        assert dispenser.helloed.wait(LONG_S) and panel.helloed.wait(LONG_S)
        tickets: list[int] = []
        for _ in range(12):  # the morning's first drop-in tickets
            tickets.append(dispenser.press(1))
            presses += 1
        for index, ticket in enumerate(tickets[:6]):  # assessed: nurse and doctor, linked by ticket number
            panel.press(1 if index % 2 == 0 else 2, ref=ticket)
            presses += 1

        # Unplug both mid-stream: some presses acknowledged, some in flight, some pressed with the cable out.
        dispenser.unplug()
        panel.unplug()
        for _ in range(5):
            tickets.append(dispenser.press(1))
            presses += 1
        for ticket in tickets[6:9]:
            panel.press(1, ref=ticket)
            presses += 1
        panel.press(2)  # no ticket number entered: an assessment without a contact
        presses += 1
        dispenser.plug()
        panel.plug()
        for _ in range(3):
            tickets.append(dispenser.press(1))
            presses += 1
        panel.press(1, ref=tickets[-1])
        presses += 1

        assert dispenser.wait_all_acked(LONG_S), dispenser.unacked
        assert panel.wait_all_acked(LONG_S), panel.unacked
        assert wait_until(lambda: stored_events(server) >= presses, LONG_S, 0.2), (stored_events(server), presses)
        assert wait_until(lambda: service.outbox.stats().depth == 0, LONG_S, 0.2), service.outbox.stats()
    finally:
        service.stop()
        dispenser.unplug()
        panel.unplug()

    assert presses == 31
    ids = [event["id"] for event in recording.events]
    assert len(ids) == presses and len(set(ids)) == presses, "a press became no event or two"
    assert stored_events(server) == presses, "the server lost or doubled an event"
    stats = service.bridge.stats
    assert stats["port.lost"] >= 2 and stats["hello_accepted"] >= 4
    assert stats["events.added"] == presses

    dump = tmp_path / "produced.jsonl"
    dump.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in recording.events))
    replayed = assert_figures_equal_replay(server, dump)
    assessment = next(result for result in replayed["results"] if result["metric"] == "assessment")
    assert assessment["denominator"] > 0, "the presses gave no assessment figure to compare"


def test_bridge_run_command_delivers_and_stops_cleanly_on_sigterm(tmp_path, server, mosquitto):
    links = tmp_path / "dev"
    links.mkdir()
    dispenser = make_device("disp-entre-1", "ticket_dispenser", links / "dispenser")
    bridge_path, collector_path = write_configs(tmp_path, mosquitto, [links / "dispenser"])
    log_path = tmp_path / "bridge.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vardkoll.bridge_cli", "run", "--config", str(bridge_path), "--collector-config", str(collector_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        assert dispenser.helloed.wait(LONG_S), log_path.read_text()
        for _ in range(5):
            dispenser.press(1)
        dispenser.unplug()
        dispenser.press(1)  # with the cable out
        dispenser.plug()
        dispenser.press(1)
        assert dispenser.wait_all_acked(LONG_S), (dispenser.unacked, log_path.read_text())
        assert wait_until(lambda: stored_events(server) >= 7, LONG_S, 0.2), log_path.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(LONG_S) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        dispenser.unplug()
    assert stored_events(server) == 7
    assert "bridge stopped" in log_path.read_text()
