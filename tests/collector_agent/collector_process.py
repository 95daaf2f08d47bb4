"""A real collector process (`vardkoll collector run --config FILE`) for fault tests, and read-only looks
at its outbox from outside (the test never opens the outbox for writing while the process runs)."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

EXAMPLE = Path(__file__).parents[2] / "vardkoll" / "examples" / "example-clinics.jsonl.gz"
EXAMPLE_UNIT = "SE2321000016-VC01"
EXAMPLE_DEVICE = "pi-vc01-a"


def example_events(count: int) -> list[dict[str, Any]]:
    """The first `count` distinct events of one unit of the shipped example archive (simulated,
    pseudonymous; the archive's deliberate repeats are left out)."""
    events, seen = [], set()
    for line in gzip.decompress(EXAMPLE.read_bytes()).splitlines():
        event = orjson.loads(line)
        if event["unit"] == EXAMPLE_UNIT and event["id"] not in seen:
            seen.add(event["id"])
            events.append({**event, "device": EXAMPLE_DEVICE})
            if len(events) == count:
                break
    return events


def _toml(value: Any) -> str:
    return orjson.dumps(str(value) if isinstance(value, Path) else value).decode()


def write_config(
    folder: Path,
    broker_url: str,
    *,
    unit: str = EXAMPLE_UNIT,
    device: str = EXAMPLE_DEVICE,
    outbox: dict[str, Any] | None = None,
    publisher: dict[str, Any] | None = None,
    mqtt: dict[str, Any] | None = None,
    connectors: list[dict[str, Any]] = (),
    top: dict[str, Any] | None = None,
) -> Path:
    """A collector TOML config with state under `folder`; tables are given as dicts."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"unit = {_toml(unit)}", f"device = {_toml(device)}"]
    lines += [f"{key} = {_toml(value)}" for key, value in (top or {"poll_interval_s": 0.2}).items()]
    tables = {
        "mqtt": {"url": broker_url, "keepalive_s": 5, **(mqtt or {})},
        "outbox": {"path": folder / "outbox.db", **(outbox or {})},
        "pseudonyms": {"secret_file": folder / "pseudonym.key"},
        "publisher": {"start_jitter_s": 0.2, "resend_after_s": 2, "max_resend_after_s": 4, "heartbeat_interval_s": 1, **(publisher or {})},
    }
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    for connector in connectors:
        lines.append("[[connectors]]")
        nested = {k: v for k, v in connector.items() if isinstance(v, dict)}
        lines += [f"{key} = {_toml(value)}" for key, value in connector.items() if key not in nested]
        for name, table in nested.items():
            lines.append(f"[connectors.{name}]")
            lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    path = folder / "collector.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def vardkoll_exe() -> str:
    return shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))


class CollectorProcess:
    """`vardkoll collector run` as a child process; its log goes to `log_path` (appended across restarts)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log_path = config.with_name("collector.log")
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> "CollectorProcess":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [vardkoll_exe(), "collector", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.starts += 1
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no `offline`, no clean close of the outbox."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def outbox_counters(path: Path) -> dict[str, int]:
    """The outbox's persisted counters, read through a read-only connection (empty before it exists)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return dict(db.execute("SELECT name, value FROM counters").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def outbox_ids(path: Path) -> set[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0] for row in db.execute("SELECT event_id FROM outbox")}
    finally:
        db.close()
