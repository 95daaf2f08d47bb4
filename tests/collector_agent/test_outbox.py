"""The outbox keeps every valid event on disk until the server's committed acknowledgement lists it."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from vardkoll.collector.outbox import Checkpoint, Outbox

from .events import DEVICE, UNIT, offered, offered_many


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.db", unit=UNIT, device=DEVICE)
    yield box
    box.close()


def test_added_events_wait_in_order_with_the_device_filled_in(outbox):
    report = outbox.add(offered_many(3))
    assert (report.added, report.duplicates, report.refused) == (3, 0, [])
    rows = outbox.batch_after(0, 10)
    assert [row.event_id for row in rows] == ["ev-0000000", "ev-0000001", "ev-0000002"]
    assert orjson.loads(rows[0].body)["device"] == DEVICE
    assert outbox.stats().depth == 3


def test_the_same_event_id_twice_is_stored_once(outbox):
    outbox.add([offered(1)])
    report = outbox.add([offered(1), offered(1)])
    assert (report.added, report.duplicates) == (0, 2)
    assert outbox.stats().depth == 1 and outbox.stats().duplicates == 2


def test_an_event_holding_a_personal_number_is_refused_never_stored_and_the_reason_hides_it(outbox, tmp_path):
    report = outbox.add([offered(1, queue="ring 19121212-1212"), offered(2)])
    assert report.added == 1 and len(report.refused) == 1
    assert "personal identity number" in report.refused[0] and "1212" not in report.refused[0]
    stats = outbox.stats()
    assert stats.refused == 1 and stats.depth == 1
    assert all("1212" not in reason for reason in stats.refused_reasons)
    outbox.close()
    for path in tmp_path.iterdir():
        assert b"19121212" not in path.read_bytes(), path


def test_invalid_events_and_other_units_are_refused_with_reasons(outbox):
    bad = [
        {k: v for k, v in offered(1).items() if k != "call"},
        offered(2, unit="SE2321000016-OTHR"),
        offered(3, device="someone-else"),
        "not an object",
    ]
    report = outbox.add(bad)
    assert report.added == 0 and len(report.refused) == 4
    assert "missing field 'call'" in report.refused[0]
    assert "serves unit SE2321000016-15SF" in report.refused[1]
    assert "this device is pi-test-01" in report.refused[2]
    assert sum(outbox.stats().refused_reasons.values()) == 4


def test_fields_the_protocol_does_not_know_never_reach_the_disk(outbox):
    outbox.add([offered(1, caller_phone="070-1234567", caller_name="Test Testsson")])
    body = outbox.batch_after(0, 1)[0].body
    assert b"070-1234567" not in body and b"Testsson" not in body


def test_nothing_is_deleted_without_an_acknowledgement_listing_it(outbox):
    outbox.add(offered_many(5))
    outbox.batch_after(0, 5)  # read for sending: still there
    report = outbox.acknowledge(
        committed=["ev-0000001", "ev-0000003", "never-sent"], rejected=[("ev-0000004", "field 'call' must be a pseudonym"), (None, "event must be an object")]
    )
    assert (report.committed, report.rejected, report.unknown) == (2, 1, 1)
    assert [row.event_id for row in outbox.batch_after(0, 10)] == ["ev-0000000", "ev-0000002"]
    stats = outbox.stats()
    assert (stats.depth, stats.committed, stats.rejected) == (2, 2, 1)
    assert stats.rejected_reasons == {"field 'call' must be a pseudonym": 1, "event must be an object": 1}


def test_a_repeated_acknowledgement_counts_once(outbox):
    outbox.add(offered_many(2))
    outbox.acknowledge(["ev-0000000"])
    outbox.acknowledge(["ev-0000000"])
    assert outbox.stats().committed == 1 and outbox.stats().depth == 1


def test_over_the_event_budget_the_oldest_are_dropped_and_counted(tmp_path):
    box = Outbox(tmp_path / "o.db", unit=UNIT, max_events=10)
    box.add(offered_many(8))
    report = box.add(offered_many(5, first=8))
    assert (report.added, report.dropped) == (5, 3)
    assert [row.event_id for row in box.batch_after(0, 100)][0] == "ev-0000003"
    stats = box.stats()
    assert (stats.depth, stats.dropped, stats.added) == (10, 3, 13)
    box.close()
    assert Outbox(tmp_path / "o.db").stats().dropped == 3  # persisted


def test_over_the_byte_budget_the_oldest_are_dropped(tmp_path):
    size = len(Outbox(tmp_path / "probe.db")._prepare(offered(0))[2])
    box = Outbox(tmp_path / "o.db", max_bytes=size * 4 + size // 2)
    box.add(offered_many(6))
    stats = box.stats()
    assert (stats.depth, stats.dropped) == (4, 2) and stats.bytes <= box.max_bytes


def test_drop_newest_keeps_the_old_events_and_counts_the_new_ones(tmp_path):
    box = Outbox(tmp_path / "o.db", max_events=3, drop_policy="drop_newest")
    report = box.add(offered_many(5))
    assert (report.added, report.dropped) == (3, 2)
    assert [row.event_id for row in box.batch_after(0, 10)] == ["ev-0000000", "ev-0000001", "ev-0000002"]
    assert box.stats().dropped == 2


def test_oldest_undelivered_is_the_earliest_event_time(outbox):
    outbox.add([offered(50), offered(10), offered(30)])
    assert outbox.stats().oldest_at.isoformat() == "2026-03-02T07:00:10+00:00"
    outbox.acknowledge(["ev-0000010"])
    assert outbox.stats().oldest_at.isoformat() == "2026-03-02T07:00:30+00:00"


def test_batches_are_fifo_after_a_sequence_and_bounded_in_bytes(outbox):
    outbox.add(offered_many(10))
    first = outbox.batch_after(0, 4)
    second = outbox.batch_after(first[-1].seq, 4)
    assert [r.event_id for r in first + second] == [f"ev-{n:07d}" for n in range(8)]
    one_size = len(first[0].body) + 1
    assert len(outbox.batch_after(0, 10, max_bytes=one_size * 3)) == 3
    assert len(outbox.batch_after(0, 10, max_bytes=1)) == 1  # never stuck on one big event


def test_a_checkpoint_is_stored_with_its_events(outbox):
    outbox.add(offered_many(2), checkpoint=Checkpoint("callback_csv", "day1.csv", "sha:1"))
    assert outbox.checkpoint("callback_csv", "day1.csv") == "sha:1"
    assert outbox.checkpoint("callback_csv", "day2.csv") is None


def test_dump_writes_every_waiting_event_as_json_lines(outbox):
    outbox.add(offered_many(1500))
    stream = io.BytesIO()
    assert outbox.dump_jsonl(stream) == 1500
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1500 and orjson.loads(lines[-1])["id"] == "ev-0001499"


def test_the_database_is_in_wal_mode_with_full_sync(outbox):
    db = sqlite3.connect(outbox.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


_WRITER = """
import sys
sys.path.insert(0, {tests!r})
from vardkoll.collector.outbox import Outbox, Checkpoint
from collector_agent.events import offered_many
box = Outbox({path!r}, max_events=3000)
n = 0
while True:
    box.add(offered_many(50, first=n), checkpoint=Checkpoint("w", "n", str(n + 50)))
    n += 50
    if n == 100:
        print("ready", flush=True)
    if n % 400 == 0:
        box.acknowledge([f"ev-{{i:07d}}" for i in range(n - 400, n - 300)])
"""


@pytest.mark.parametrize("delay_s", [0.05, 0.3, 0.8])
def test_kill_9_mid_write_leaves_whole_transactions_and_consistent_counters(tmp_path, delay_s):
    path = tmp_path / "crash.db"
    tests = str(Path(__file__).parent.parent)
    child = subprocess.Popen([sys.executable, "-c", _WRITER.format(tests=tests, path=str(path))], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"ready", child.stderr.read()
    time.sleep(delay_s)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    box = Outbox(path, max_events=3000)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count, size = db.execute("SELECT count(*), coalesce(sum(length(body)), 0) FROM outbox").fetchone()
    stats = box.stats()
    assert (stats.depth, stats.bytes) == (count, size)
    assert stats.added == count + stats.committed + stats.dropped
    written = int(box.checkpoint("w", "n"))
    assert stats.added == written  # every add is wholly there, with its checkpoint, or wholly absent
    for (body,) in db.execute("SELECT body FROM outbox"):
        assert orjson.loads(body)["type"] == "call.offered"
    assert box.add(offered_many(1, first=written)).added == 1  # and it goes on working


def test_every_sqlite_file_of_the_collector_caches_at_most_512_kib(outbox, tmp_path):
    # SPEC 6's 40 MB: SQLite's default 2 MB page cache filled up while draining the outbox.
    from vardkoll.collector.key_schedule import PeriodBook
    from vardkoll.collector.lookup import LookupMap
    from vardkoll.collector.sqlite_memory import PAGE_CACHE_KIB
    from zoneinfo import ZoneInfo

    book = PeriodBook.open(tmp_path / "periods.db", b"k" * 32, ZoneInfo("Europe/Stockholm"))
    lookup = LookupMap(tmp_path / "lookup.db")
    try:
        for connection in (outbox._db, book._db, lookup._db):
            assert connection.execute("PRAGMA cache_size").fetchone()[0] == -PAGE_CACHE_KIB == -512
    finally:
        book.close()
        lookup.close()
