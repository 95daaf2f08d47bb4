"""The Asterisk queue_log connector: mapping, rotation, truncation, restarts, bad lines, nothing personal stored."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest

from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig, ConnectorEntry
from vardkoll.collector.connectors import REGISTRY, build_connector
from vardkoll.collector.connectors.asterisk_queue_log import AsteriskQueueLogConnector
from vardkoll.collector.connectors.base import ConnectorContext

from .events import DEVICE, UNIT
from .fakes import FakeMqttClient

FIXTURES = Path(__file__).parent / "fixtures"
QUEUE_LOG = FIXTURES / "queue_log-2026-03-02"
REFUSED_LOG = FIXTURES / "refused-2026-03-02.log"
CALLER_VALUES = ["+46-TEST-000", "TEST-000", "anonymous", "Testperson", "Fiktiv", "Lunch", "PJSIP", "ssk-anna", "lak-bo"]
RAW_CALL_IDS = re.compile(rb"1772\d{6}\.\d+")


def connector(folder: Path, checkpoints: dict | None = None, **settings):
    stored = checkpoints if checkpoints is not None else {}
    context = ConnectorContext("asterisk", stored.get, lambda: 4e9)
    return build_connector("asterisk_queue_log", {"path": str(folder / "queue_log"), **settings}, context)


def drain(source, checkpoints: dict) -> list:
    """Poll once, storing each batch's checkpoint as the outbox would (in the same step as its events)."""
    batches = []
    for batch in source.poll():
        if batch.checkpoint is not None:
            checkpoints[batch.checkpoint.key] = batch.checkpoint.value
        batches.append(batch)
    return batches


def events_of(batches) -> list:
    return [event for batch in batches for event in batch.events]


def by_call(events) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {}
    for event in events:
        calls.setdefault(event.source_key.rsplit(".", 1)[1], []).append(event.type)
    return calls


@pytest.fixture
def log_folder(tmp_path):
    folder = tmp_path / "asterisk"
    folder.mkdir()
    shutil.copy(QUEUE_LOG, folder / "queue_log")
    shutil.copy(REFUSED_LOG, folder / "refused.log")
    return folder


def test_registered_by_name():
    assert REGISTRY["asterisk_queue_log"] is AsteriskQueueLogConnector


def test_queue_events_map_to_call_events(log_folder):
    events = events_of(drain(connector(log_folder), {}))
    assert by_call(events) == {
        "101": ["call.offered", "call.answered"],
        "103": ["call.offered", "call.abandoned"],
        "104": ["call.offered", "call.abandoned"],  # EXITWITHTIMEOUT
        "105": ["call.offered", "call.abandoned"],  # EXITWITHKEY, key 1
        "106": ["call.offered", "call.abandoned"],  # EXITWITHKEY, key 2
        "107": ["call.offered", "call.answered"],  # COMPLETEAGENT adds nothing
        "109": ["call.offered", "call.abandoned"],  # EXITEMPTY
        "110": ["call.rejected"],  # custom QueueLog(...,FULL)
        "113": ["call.offered"],
    }
    offered = next(e for e in events if e.type == "call.offered")
    assert offered.fields == {"queue": "radgivning"} and offered.refs == {"call": ("call", "1772434800.101")}
    assert offered.at.isoformat() == "2026-03-02T08:00:00+01:00"  # the epoch, in the unit's zone
    assert next(e for e in events if e.type == "call.rejected").fields == {"reason": "queue_full"}


def test_no_event_carries_anything_but_protocol_fields(log_folder):
    for event in events_of(drain(connector(log_folder, refused_log=str(log_folder / "refused.log")), {})):
        assert set(event.fields) <= {"queue", "reason"} and set(event.refs) == {"call"}
        assert not any(value in repr(event) for value in CALLER_VALUES)


def test_exit_with_key_is_configurable(log_folder):
    keyed = by_call(events_of(drain(connector(log_folder, callback_keys=["1"]), {})))
    assert keyed["105"] == ["call.offered", "call.callback_booked"] and keyed["106"] == ["call.offered", "call.abandoned"]
    every = by_call(events_of(drain(connector(log_folder, exit_with_key="callback_booked"), {})))
    assert every["105"] == every["106"] == ["call.offered", "call.callback_booked"]


def test_queues_can_be_limited(log_folder):
    calls = by_call(events_of(drain(connector(log_folder, queues=["labb"]), {})))
    assert calls == {"113": ["call.offered"]}


def test_refused_callers_come_from_the_dialplan_log(log_folder):
    source = connector(log_folder, refused_log=str(log_folder / "refused.log"))
    batches = drain(source, {})
    rejected = {e.source_key: e.fields["reason"] for e in events_of(batches) if e.type == "call.rejected"}
    assert rejected == {"1772435300.110": "queue_full", "1772435280.120": "queue_full", "1772438400.121": "closed"}
    assert "refused.log: line 3: the status is not among the configured `refused_statuses`" in [p for b in batches for p in b.problems]


def test_bad_lines_are_counted_and_reported_by_line_without_values(log_folder):
    source = connector(log_folder)
    batches = drain(source, {})
    problems = [p for b in batches for p in b.problems]
    assert problems == [
        "queue_log: line 20: the timestamp is not a Unix time in whole seconds",
        "queue_log: line 21: fewer than 5 '|'-separated fields",
        "queue_log: line 22: a CONNECT line without a call id",
    ]
    assert source.counters["bad_lines"] == 3 and source.counters["lines"] == 23
    assert not any(value in " ".join(problems) for value in CALLER_VALUES + ["1772", "not-a-time"])


def test_an_incomplete_last_line_waits_for_its_newline(log_folder):
    checkpoints: dict = {}
    source = connector(log_folder, checkpoints)
    drain(source, checkpoints)
    with open(log_folder / "queue_log", "ab") as handle:
        handle.write(b"1772435700|1772435700.130|radgivning|NONE|ENTERQUEUE||anonym")
    assert drain(source, checkpoints) == []
    with open(log_folder / "queue_log", "ab") as handle:
        handle.write(b"ous|1\n")
    assert by_call(events_of(drain(source, checkpoints))) == {"130": ["call.offered"]}


def test_over_long_and_non_utf8_lines_are_bad_and_skipped(log_folder):
    (log_folder / "queue_log").write_bytes(
        b"1772435700|1772435700.130|q|NONE|ENTERQUEUE||"
        + b"x" * 600
        + b"|1\n"
        + b"1772435701|1772435701.131|q|NONE|ENTERQUEUE||\xff\xfe|1\n"
        + b"1772435702|1772435702.132|q|NONE|ENTERQUEUE||anonymous|1\n"
    )
    batches = drain(connector(log_folder, max_line_bytes=256), {})
    assert [p for b in batches for p in b.problems] == ["queue_log: line 1: longer than 256 bytes", "queue_log: line 2: not valid UTF-8"]
    assert by_call(events_of(batches)) == {"132": ["call.offered"]}


def test_small_batches_resume_exactly_where_they_stopped(log_folder):
    checkpoints: dict = {}
    batches = drain(connector(log_folder, checkpoints, max_bytes_per_batch=1024), checkpoints)
    assert len(batches) > 1
    assert events_of(batches) == events_of(drain(connector(log_folder), {}))


def test_a_restart_resumes_without_duplicates_or_gaps(log_folder):
    checkpoints: dict = {}
    whole = events_of(drain(connector(log_folder), {}))
    lines = (log_folder / "queue_log").read_bytes().splitlines(keepends=True)
    (log_folder / "queue_log").write_bytes(b"".join(lines[:10]))
    first = events_of(drain(connector(log_folder, checkpoints), checkpoints))
    with open(log_folder / "queue_log", "ab") as handle:
        handle.write(b"".join(lines[10:]))
    second = events_of(drain(connector(log_folder, checkpoints), checkpoints))  # a new process: only the checkpoint remains
    assert first + second == whole


def test_rotation_reads_the_rest_of_the_old_file_then_the_new_one(log_folder):
    checkpoints: dict = {}
    lines = (log_folder / "queue_log").read_bytes().splitlines(keepends=True)
    whole = events_of(drain(connector(log_folder), {}))
    (log_folder / "queue_log").write_bytes(b"".join(lines[:8]))
    source = connector(log_folder, checkpoints)
    first = events_of(drain(source, checkpoints))
    with open(log_folder / "queue_log", "ab") as handle:  # written after our last read, before rotation
        handle.write(b"".join(lines[8:15]))
    os.rename(log_folder / "queue_log", log_folder / "queue_log.1")
    (log_folder / "queue_log").write_bytes(b"".join(lines[15:]))
    second = events_of(drain(connector(log_folder, checkpoints), checkpoints))
    assert first + second == whole
    assert drain(connector(log_folder, checkpoints), checkpoints) == []


def _rotate(folder: Path, rotated_name: str, written_ns: int) -> None:
    """logrotate's move: the file is renamed, with its last write at `written_ns`, and a new empty one created."""
    os.utime(folder / "queue_log", ns=(written_ns, written_ns))
    os.rename(folder / "queue_log", folder / rotated_name)
    (folder / "queue_log").touch()


def test_two_rotations_since_the_last_read_read_every_generation_once(log_folder):
    """A collector stopped over two rotations (or rotations faster than its polls) reads the week in between too."""
    checkpoints: dict = {}
    lines = (log_folder / "queue_log").read_bytes().splitlines(keepends=True)
    whole = events_of(drain(connector(log_folder), {}))
    week = 7 * 86400 * 10**9
    (log_folder / "queue_log").write_bytes(b"".join(lines[:5]))
    first = events_of(drain(connector(log_folder, checkpoints), checkpoints))
    with open(log_folder / "queue_log", "ab") as handle:  # written after the last read
        handle.write(b"".join(lines[5:9]))
    _rotate(log_folder, "queue_log-20260302", 1772400000 * 10**9)
    (log_folder / "queue_log").write_bytes(b"".join(lines[9:17]))  # a whole generation never polled
    _rotate(log_folder, "queue_log-20260309", 1772400000 * 10**9 + week)
    (log_folder / "queue_log-20260223.gz").write_bytes(b"\x1f\x8b\x08\x00 not lines at all\n")  # compressed: never read
    (log_folder / "queue_log").write_bytes(b"".join(lines[17:]))
    source = connector(log_folder, checkpoints)
    batches = drain(source, checkpoints)
    second = events_of(batches)
    assert first + second == whole
    assert not any(".gz" in problem for batch in batches for problem in batch.problems)
    assert source.counters["rotations_caught_up"] == 1
    assert drain(connector(log_folder, checkpoints), checkpoints) == []


def test_a_rotation_before_the_new_file_was_ever_polled_loses_nothing(log_folder):
    """The collector read the file to its end; it was rotated, the next one filled and rotated too before a poll."""
    checkpoints: dict = {}
    lines = (log_folder / "queue_log").read_bytes().splitlines(keepends=True)
    whole = events_of(drain(connector(log_folder), {}))
    (log_folder / "queue_log").write_bytes(b"".join(lines[:12]))
    first = events_of(drain(connector(log_folder, checkpoints), checkpoints))
    _rotate(log_folder, "queue_log.1", 1772400000 * 10**9)
    (log_folder / "queue_log").write_bytes(b"".join(lines[12:20]))
    os.rename(log_folder / "queue_log.1", log_folder / "queue_log.2")  # numbered: the older one moves up
    _rotate(log_folder, "queue_log.1", 1772400060 * 10**9)
    (log_folder / "queue_log").write_bytes(b"".join(lines[20:]))
    second = events_of(drain(connector(log_folder, checkpoints), checkpoints))
    assert first + second == whole


def test_a_restart_inside_a_caught_up_generation_resumes_there(log_folder):
    checkpoints: dict = {}
    lines = (log_folder / "queue_log").read_bytes().splitlines(keepends=True)
    whole = events_of(drain(connector(log_folder), {}))
    (log_folder / "queue_log").write_bytes(b"".join(lines[:4]))
    first = events_of(drain(connector(log_folder, checkpoints), checkpoints))
    _rotate(log_folder, "queue_log-20260302", 1772400000 * 10**9)
    (log_folder / "queue_log").write_bytes(b"".join(lines[4:14]))
    _rotate(log_folder, "queue_log-20260309", 1772400060 * 10**9)
    (log_folder / "queue_log").write_bytes(b"".join(lines[14:]))
    inode_between = (log_folder / "queue_log-20260309").stat().st_ino
    read_before_the_crash = []
    for batch in connector(log_folder, checkpoints).poll():  # the process dies once it is inside the middle generation
        if batch.checkpoint is not None:
            checkpoints[batch.checkpoint.key] = batch.checkpoint.value
        read_before_the_crash += batch.events
        if orjson.loads(checkpoints["queue_log"])["inode"] == inode_between:
            break
    after = events_of(drain(connector(log_folder, checkpoints), checkpoints))
    assert read_before_the_crash and after
    assert first + read_before_the_crash + after == whole


def test_rotation_when_the_old_file_is_gone_starts_the_new_file_from_its_start(log_folder):
    checkpoints: dict = {}
    source = connector(log_folder, checkpoints)
    drain(source, checkpoints)
    # The new file is made before the old one is deleted, so it cannot reuse the old inode.
    (log_folder / "new").write_bytes(b"1772435700|1772435700.130|radgivning|NONE|ENTERQUEUE||anonymous|1\n")
    os.unlink(log_folder / "queue_log")
    os.rename(log_folder / "new", log_folder / "queue_log")
    batches = drain(source, checkpoints)
    assert by_call(events_of(batches)) == {"130": ["call.offered"]}
    # Whatever was written to the deleted file after the last read is unknown: said, never silent.
    assert [problem for batch in batches for problem in batch.problems] == [
        "queue_log: the file read last (to line 26) is gone; lines written to it after that were not read"
    ]
    assert source.counters["rotated_files_gone"] == 1


def test_truncation_in_place_reads_the_file_again_from_its_start(log_folder):
    checkpoints: dict = {}
    source = connector(log_folder, checkpoints)
    drain(source, checkpoints)
    (log_folder / "queue_log").write_bytes(b"1772435700|1772435700.130|radgivning|NONE|ENTERQUEUE||anonymous|1\n")  # copytruncate + a new line
    assert by_call(events_of(drain(source, checkpoints))) == {"130": ["call.offered"]}
    assert source.counters["truncations"] == 1


def test_a_file_truncated_and_regrown_past_the_position_is_noticed(log_folder):
    checkpoints: dict = {}
    (log_folder / "queue_log").write_bytes(b"1772435600|1772435600.129|radgivning|NONE|ENTERQUEUE||anonymous|1\n")
    source = connector(log_folder, checkpoints)
    drain(source, checkpoints)
    new = b"".join(b"1772435700|1772435700.%d|radgivning|NONE|ENTERQUEUE||anonymous|1\n" % n for n in range(130, 133))
    with open(log_folder / "queue_log", "r+b") as handle:  # same inode, new content longer than the old
        handle.truncate(0)
        handle.write(new)
    assert by_call(events_of(drain(source, checkpoints))) == {"130": ["call.offered"], "131": ["call.offered"], "132": ["call.offered"]}


def test_start_at_end_skips_history(log_folder):
    checkpoints: dict = {}
    assert events_of(drain(connector(log_folder, checkpoints, start_at="end"), checkpoints)) == []
    with open(log_folder / "queue_log", "ab") as handle:
        handle.write(b"1772435700|1772435700.130|radgivning|NONE|ENTERQUEUE||anonymous|1\n")
    assert by_call(events_of(drain(connector(log_folder, checkpoints, start_at="end"), checkpoints))) == {"130": ["call.offered"]}


def test_a_missing_file_gives_nothing_and_no_error(tmp_path):
    assert drain(connector(tmp_path), {}) == []


# -- through the agent: pseudonyms, outbox, restarts, and nothing personal stored ------------------------


def make_agent(tmp_path: Path, log_folder: Path) -> Agent:
    config = CollectorConfig(
        unit=UNIT,
        device=DEVICE,
        outbox={"path": tmp_path / "state" / "outbox.db"},
        pseudonyms={"secret_file": tmp_path / "state" / "pseudonym.key"},
        connectors=[ConnectorEntry(type="asterisk_queue_log", path=str(log_folder / "queue_log"), refused_log=str(log_folder / "refused.log"))],
    )
    return Agent(config, client=FakeMqttClient(), clock_state=lambda: None)


def test_the_agent_stores_valid_events_and_no_caller_id_or_raw_call_id_reaches_the_outbox(tmp_path, log_folder):
    agent = make_agent(tmp_path, log_folder)
    report = agent.collect_once()
    assert (report.added, report.refused, len(report.problems)) == (18, 0, 4)
    events = [orjson.loads(row.body) for row in agent.outbox.batch_after(0, 100)]
    assert Counter(e["type"] for e in events) == {"call.offered": 8, "call.answered": 2, "call.abandoned": 5, "call.rejected": 3}
    agent.outbox.close()
    # Not the secret, and not the lookup map: it keeps raw call ids on the device by design (collector/lookup.py).
    stored = b"".join(path.read_bytes() for path in (tmp_path / "state").iterdir() if path.name not in ("pseudonym.key", "lookup.db"))
    for value in CALLER_VALUES:
        assert value.encode() not in stored, value
    assert not RAW_CALL_IDS.search(stored)
    for event in events:  # no value but the time and the unit's HSA-id holds a run of digits
        values = [str(v) for k, v in event.items() if k not in ("at", "unit", "v")]
        assert not any(re.search(r"\d{4,}", value) for value in values), event


def test_agent_restart_appends_only_new_lines(tmp_path, log_folder):
    first = make_agent(tmp_path, log_folder)
    assert first.collect_once().added == 18
    first.outbox.close()
    with open(log_folder / "queue_log", "ab") as handle:
        handle.write(b"1772435700|1772435700.130|radgivning|NONE|ENTERQUEUE||+46-TEST-0008|1\n")
    second = make_agent(tmp_path, log_folder)
    report = second.collect_once()
    assert (report.added, report.duplicates, report.problems) == (1, 0, [])
    assert second.outbox.stats().added == 19
    second.outbox.close()
