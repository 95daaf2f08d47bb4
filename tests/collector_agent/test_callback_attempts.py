"""Callback attempts are each their own event, and callbacks link to the phone queue's calls (issue 12
item 9): an Asterisk test clinic whose callback export of one day arrives late has the same figures as
when it arrives in order; a callback export beside a phone queue must say how its calls link.

The clinic, worked by hand (queue "radgivning", times Europe/Stockholm, UTC+1):

| call | Asterisk queue_log | callback export rows (one per attempt) |
|---|---|---|
| A | Mon 08:00 ENTERQUEUE, 08:01 EXITWITHKEY 1 | Mon export: made Mon 15:00, not reached; Tue export: made Tue 09:00, reached |
| B | Mon 08:10 ENTERQUEUE, 08:12 CONNECT | |
| C | Mon 08:20 ENTERQUEUE, 08:21 EXITWITHKEY 1 | Tue export: made Tue 10:00, reached |
| D | Mon 08:30 ENTERQUEUE, 08:31 ABANDON | |
| E | Tue 08:00 ENTERQUEUE, 08:02 CONNECT | |
| F | Tue 08:05 ENTERQUEUE, 08:06 EXITWITHKEY 1 | Tue export: made Tue 11:00, reached |

Telephone (SPEC 2.1; an unreached callback counts, the earliest callback counts):
- Mon–Tue: offered A–F = 6; same day: A (Mon's unreached attempt), B, E, F = 4. answered B, E = 2;
  callback_same_day A, F = 2; callback_later C = 1; abandoned D = 1.
- Mon alone: offered A–D = 4; same day A, B = 2.
If both attempts of A shared one event id, the Tue export arriving first would make A a callback_later
(3 of 6, 1 of 4). If the export's own ids were the calls, C and F would be offered twice (8 calls).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from vardkoll.collector.config import ConfigError, load_config
from vardkoll.collector.connectors import build_connector
from vardkoll.collector.connectors.base import ConnectorContext
from vardkoll.collector.doctor import run_doctor
from vardkoll.collector.pipeline import Pipeline
from vardkoll.collector.pseudonyms import Pseudonymiser

from .events import DEVICE, UNIT

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CALL_IDS = {name: f"1772434{index}00.{index}" for index, name in enumerate("ABCDEF", start=1)}


def epoch(local: str) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=STOCKHOLM).timestamp())


def queue_log() -> str:
    lines = []
    for call, enter, event, data, at in [
        ("A", "2026-03-02 08:00", "EXITWITHKEY", "1|1", "2026-03-02 08:01"),
        ("B", "2026-03-02 08:10", "CONNECT", "120|1772434200.99|5", "2026-03-02 08:12"),
        ("C", "2026-03-02 08:20", "EXITWITHKEY", "1|1", "2026-03-02 08:21"),
        ("D", "2026-03-02 08:30", "ABANDON", "1|1|60", "2026-03-02 08:31"),
        ("E", "2026-03-03 08:00", "CONNECT", "120|1772434500.99|5", "2026-03-03 08:02"),
        ("F", "2026-03-03 08:05", "EXITWITHKEY", "1|1", "2026-03-03 08:06"),
    ]:
        lines.append(f"{epoch(enter)}|{CALL_IDS[call]}|radgivning|NONE|ENTERQUEUE||anonymous|1")
        lines.append(f"{epoch(at)}|{CALL_IDS[call]}|radgivning|PJSIP/ssk|{event}|{data}")
    return "\n".join(lines) + "\n"


HEADER = "callback_id;samtals_id;call_time;callback_booked;callback_made;outcome\n"
MONDAY_EXPORT = HEADER + f"CB-1;{CALL_IDS['A']};2026-03-02 08:00:00;2026-03-02 08:01:00;2026-03-02 15:00:00;ej nådd\n"
TUESDAY_EXPORT = HEADER + "".join(
    [
        f"CB-2;{CALL_IDS['A']};2026-03-02 08:00:00;2026-03-02 08:01:00;2026-03-03 09:00:00;nådd\n",
        f"CB-3;{CALL_IDS['C']};2026-03-02 08:20:00;2026-03-02 08:21:00;2026-03-03 10:00:00;nådd\n",
        f"CB-4;{CALL_IDS['F']};2026-03-03 08:05:00;2026-03-03 08:06:00;2026-03-03 11:00:00;nådd\n",
    ]
)
CALLBACK_SETTINGS = {"settle_s": 0, "columns": {"call_id": "callback_id", "queue_call_id": "samtals_id", "callback_slot": None}}
ASTERISK_SETTINGS = {"exit_with_key": "abandoned", "callback_keys": ["1"]}


def wire_events(connector_type: str, settings: dict, pipeline: Pipeline) -> list[dict]:
    connector = build_connector(connector_type, settings, ConnectorContext(connector_type, {}.get, lambda: 4e9))
    return [pipeline.to_wire(connector_type, event) for batch in connector.poll() for event in batch.events]


def exported(tmp_path: Path, name: str, text: str, pipeline: Pipeline) -> list[dict]:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return wire_events("callback_csv", {"folder": str(folder), **CALLBACK_SETTINGS}, pipeline)


def replay(tmp_path: Path, events: list[dict], first: str, last: str) -> dict:
    archive = tmp_path / f"arrived-{len(list(tmp_path.glob('arrived-*')))}.jsonl"
    archive.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    exe = shutil.which("vardkoll", path=str(Path(sys.executable).parent)) or "vardkoll"
    done = subprocess.run([exe, "replay", str(archive), "--from", first, "--to", last], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert result["rejected"] == []
    return next(figure for figure in result["results"] if figure["metric"] == "telephone")


@pytest.fixture
def clinic(tmp_path):
    pipeline = Pipeline(Pseudonymiser(b"test-clinic-secret-0123456789"), UNIT, DEVICE)
    (tmp_path / "asterisk").mkdir()
    (tmp_path / "asterisk" / "queue_log").write_text(queue_log())
    phone = wire_events("asterisk_queue_log", {"path": str(tmp_path / "asterisk" / "queue_log"), **ASTERISK_SETTINGS}, pipeline)
    return phone, exported(tmp_path, "monday", MONDAY_EXPORT, pipeline), exported(tmp_path, "tuesday", TUESDAY_EXPORT, pipeline)


def test_each_callback_attempt_is_its_own_event(clinic):
    _, monday, tuesday = clinic
    done = [e for e in monday + tuesday if e["type"] == "call.callback_done"]
    assert len(done) == 4 and len({e["id"] for e in done}) == 4
    first_a, second_a = (e for e in done if e["call"] == done[0]["call"])
    assert (first_a["reached"], second_a["reached"]) == (False, True)


def test_a_callback_export_arriving_a_day_late_gives_the_same_figures_as_in_order(clinic, tmp_path):
    phone, monday, tuesday = clinic
    in_order, late = phone + monday + tuesday, phone + tuesday + monday
    for arrived in (in_order, late):
        both_days = replay(tmp_path, arrived, "2026-03-02", "2026-03-03")
        assert (both_days["numerator"], both_days["denominator"]) == (4, 6)
        details = both_days["details"]
        assert (
            details["answered"],
            details["callback_same_day"],
            details["callback_later"],
            details["abandoned"],
            details["callback_pending"],
            details["rejected"],
        ) == (2, 2, 1, 1, 0, 0)
        monday_only = replay(tmp_path, arrived, "2026-03-02", "2026-03-02")
        assert (monday_only["numerator"], monday_only["denominator"]) == (2, 4)


def write_config(tmp_path: Path, callback_columns: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(f"""
unit = "{UNIT}"
device = "{DEVICE}"
[outbox]
path = "{tmp_path / "outbox.db"}"
[pseudonyms]
secret_file = "{tmp_path / "secret.key"}"
[remote_config]
enabled = false
[[connectors]]
type = "asterisk_queue_log"
path = "{tmp_path / "queue_log"}"
[[connectors]]
type = "callback_csv"
folder = "{tmp_path}"
[connectors.columns]
call_id = "callback_id"
{callback_columns}
""")
    return path


def test_a_callback_export_beside_a_phone_queue_must_say_how_its_calls_link(tmp_path):
    unlinked = write_config(tmp_path, "")
    with pytest.raises(ConfigError, match="callback_csv.*asterisk_queue_log.*second call.*queue_call_id"):
        load_config(unlinked)
    report = run_doctor(unlinked, timeout_s=0.5)
    assert report.exit_code != 0
    assert "Källa callback_csv" in report.text and "räknas som ett samtal till" in report.text and "queue_call_id" in report.text
    linked = write_config(tmp_path, 'queue_call_id = "samtals_id"')
    assert load_config(linked).connectors[1].settings["columns"]["queue_call_id"] == "samtals_id"
    assert "räknas som ett samtal till" not in run_doctor(linked, timeout_s=0.5).text
