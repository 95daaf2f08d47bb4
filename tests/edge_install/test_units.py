"""The systemd units in deploy/collector/ pass `systemd-analyze verify`, pointed at a real installed bundle
(the units' /opt/vardkoll-collector/current is the test's install), and give the serial ports and the
watchdog as docs/collector.md says."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

from tests.support import service_missing

ROOT = Path(__file__).parents[2]
UNITS = ["vardkoll-collector.service", "vardkoll-bridge.service", "vardkoll-collector-update.service", "vardkoll-collector-update.path"]


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, allow_no_value=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive in systemd
    parser.read_string((ROOT / "deploy" / "collector" / name).read_text())
    return parser


def test_the_units_pass_systemd_analyze_verify(installed: Path, tmp_path: Path):
    if shutil.which("systemd-analyze") is None:
        service_missing("systemd-analyze is not installed (package systemd)")
    for name in UNITS:
        text = (ROOT / "deploy" / "collector" / name).read_text()
        (tmp_path / name).write_text(text.replace("/opt/vardkoll-collector/current", str(installed)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / name) for name in UNITS)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and other warnings: any output is a finding.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_collector_and_bridge_reach_the_serial_ports_but_no_other_device_and_have_a_watchdog():
    for name in ("vardkoll-collector.service", "vardkoll-bridge.service"):
        service = _unit(name)["Service"]
        assert "PrivateDevices" not in service, name
        assert service["DevicePolicy"] == "closed" and service["SupplementaryGroups"] == "dialout", name
        assert service["Type"] == "notify" and int(service["WatchdogSec"]) >= 60, name  # above apply_timeout_s (30 s)
    text = (ROOT / "deploy" / "collector" / "vardkoll-bridge.service").read_text()
    assert "DeviceAllow=char-ttyUSB rw" in text and "DeviceAllow=char-ttyACM rw" in text
    assert _unit("vardkoll-bridge.service")["Unit"]["Conflicts"] == "vardkoll-collector.service"
