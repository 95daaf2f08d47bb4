"""The README's first command: `vardkoll demo` runs broker, server and clinics, and stops cleanly."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support import free_port


def test_demo_serves_figures_from_simulated_clinics_and_stops_on_ctrl_c():
    exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
    port = free_port()
    demo = subprocess.Popen([exe, "demo", "--port", str(port), "--clinics", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = ""
        deadline = time.monotonic() + 120
        while "Press Ctrl-C" not in output and time.monotonic() < deadline:
            output += demo.stdout.readline()
        token = re.search(r"admin token:\s+(\S+)", output).group(1)
        headers = {"Authorization": f"Bearer {token}"}
        figures = []
        while time.monotonic() < deadline:
            params = {"metric": "telephone", "region": "Region Demo", "from": _days_ago(28), "to": _days_ago(-1)}
            figures = httpx.get(f"http://127.0.0.1:{port}/api/v1/compliance", params=params, headers=headers).json()
            if len(figures) == 2 and all(f["denominator"] > 100 for f in figures):
                break
            time.sleep(1)
        assert len(figures) == 2 and all(f["denominator"] > 100 for f in figures), figures
        assert all(not f["data"]["no_data"] for f in figures)
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, rest
    assert "stopped." in rest and "Traceback" not in rest


def _days_ago(days: int) -> str:
    from datetime import date, timedelta

    return (date.today() - timedelta(days=days)).isoformat()
