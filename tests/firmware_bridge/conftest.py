"""Fixtures for the firmware bridge: the compiled C harness, a bridge config, simulated devices on ptys."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from support import on_ci, service_missing

from vardkoll.firmware_bridge.bridge import Bridge, MemorySink
from vardkoll.firmware_bridge.config import BridgeConfig, parse_config
from vardkoll.firmware_bridge.simulator import SimulatedDevice

FIRMWARE = Path(__file__).parents[2] / "firmware_bridge" / "firmware"
VECTORS = json.loads((Path(__file__).with_name("vectors.json")).read_text())
UNIT = "SE2321000016-15SF"
OTHER_UNIT = "SE2321000016-99XY"
KEY = b"test-key-0123456789abcdef"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror", "-O2"]


@pytest.fixture(scope="session")
def c_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vectors_c built from the reference sources with the system compiler (warnings are errors)."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        service_missing("no C compiler (cc) on this machine: the C reference implementation is not checked")
    binary = tmp_path_factory.mktemp("firmware") / "vectors_c"
    result = subprocess.run(
        [compiler, *CFLAGS, "-o", str(binary), str(FIRMWARE / "vk_proto.c"), str(FIRMWARE / "vectors_c.c")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"the C reference implementation does not compile cleanly:\n{result.stderr}"
    return binary


@pytest.fixture(scope="session")
def run_c(c_harness: Path):
    """Run harness commands; returns the output lines."""

    def run(commands: list[str]) -> list[str]:
        result = subprocess.run([str(c_harness)], input="\n".join(commands) + "\n", capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    return run


def device_entries() -> list[dict]:
    return [
        {
            "device_id": "disp-entre-1",
            "unit": UNIT,
            "kind": "ticket_dispenser",
            "inputs": {"1": {"event": "care.contact", "channel": "visit", "listed": True}},
        },
        {
            "device_id": "panel-1",
            "unit": UNIT,
            "kind": "button_panel",
            "ticket_source": "disp-entre-1",
            "inputs": {
                "1": {"event": "care.assessed", "profession": "nurse", "form": "physical"},
                "2": {"event": "care.assessed", "profession": "doctor", "form": "physical"},
            },
        },
    ]


def make_config(**overrides) -> BridgeConfig:
    data = {
        "pseudonym_key": KEY.decode(),
        "reopen_initial_s": 0.02,
        "reopen_max_s": 0.2,
        "devices": device_entries(),
    }
    data.update(overrides)
    return parse_config(data)


@pytest.fixture
def link_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def make_bridge() -> Iterator:
    """make_bridge(ports, **config overrides) -> (bridge, sink); stopped after the test."""
    bridges: list[Bridge] = []

    def make(ports: list[Path], sink=None, **overrides) -> tuple[Bridge, MemorySink]:
        sink = sink if sink is not None else MemorySink()
        bridge = Bridge(make_config(**overrides), sink)
        bridge.start([str(port) for port in ports])
        bridges.append(bridge)
        return bridge, sink

    yield make
    for bridge in bridges:
        bridge.stop()


@pytest.fixture
def make_device(link_dir: Path) -> Iterator:
    """make_device(device_id, kind, unit=UNIT, **kw) -> a plugged SimulatedDevice; unplugged after the test."""
    devices: list[SimulatedDevice] = []

    def make(device_id: str, kind: str, unit: str = UNIT, **kwargs) -> SimulatedDevice:
        device = SimulatedDevice(device_id, unit, kind, link_dir / device_id, hello_retry_s=0.05, retransmit_s=0.2, **kwargs)
        device.plug()
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.unplug()


__all__ = ["KEY", "OTHER_UNIT", "UNIT", "VECTORS", "make_config", "on_ci"]
