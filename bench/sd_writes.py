"""Bytes the collector's outbox writes to storage per event (an SD card wears with every byte written).

    .venv/bin/python bench/sd_writes.py [--events 2000] [--json FILE]

Each pattern stores events in the real outbox (SQLite, WAL, synchronous=FULL: collector/outbox.py) with a
connector checkpoint, as a connector does, and then deletes them as the server's acknowledgements do,
one acknowledgement per stored group; WAL checkpoints happen as SQLite runs them (every 1000 pages) and
once more when the outbox is closed, so they are counted. Measured: `write_bytes` of /proc/self/io (what
this process sent to the block layer, fsyncs included) divided by the events; `wchar` (bytes handed to
write calls) beside it. Patterns:

- trickle: one event per transaction (a button press, a queue-log line every few seconds), the worst case;
- small groups: 10 events per transaction (a poll that found a few);
- export: 500 per transaction (a callback export or a FHIR page).

The key schedule's period book (collector/key_schedule.py) is measured beside it: one new call per event
(every `call.offered` is one; its later events add nothing), written (`flush`) once per group before the
outbox's transaction, as the agent does.

The baseline is the same file written with a plain append + fsync per event (the least a durable
per-event store can write). Logs: the collector logs per connection, per problem and per refusal, not
per event; bench/collector.py and packaging/arm64_proof.py report the log's size after their runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from vardkoll.collector.key_schedule import PeriodBook
from vardkoll.collector.outbox import Checkpoint, Outbox

UNIT = "SE2321000016-VC01"
DEVICE = "bench-sd-01"


def io_counters() -> dict[str, int]:
    return {key: int(value) for key, value in (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())}


def event(index: int) -> dict[str, object]:
    minute, second = divmod(index % 3600, 60)
    return {
        "v": 1,
        "id": f"bench-sd-{index:08d}",
        "type": "call.offered",
        "unit": UNIT,
        "device": DEVICE,
        "at": f"2026-12-03T08:{minute:02d}:{second:02d}+01:00",
        "call": f"c{index:010d}pseudonym",
    }


def measure_outbox(folder: Path, events: int, group: int) -> dict[str, float]:
    path = folder / f"outbox-{group}.db"
    outbox = Outbox(path, unit=UNIT, device=DEVICE)
    before = io_counters()
    for start in range(0, events, group):
        batch = [event(i) for i in range(start, min(events, start + group))]
        report = outbox.add(batch, Checkpoint("bench", "file", str(start)))
        assert report.added == len(batch)
        outbox.acknowledge([str(e["id"]) for e in batch])
    outbox.close()  # the last checkpoint of the WAL into the database file
    after = io_counters()
    return {
        "write_bytes_per_event": (after["write_bytes"] - before["write_bytes"]) / events,
        "wchar_per_event": (after["wchar"] - before["wchar"]) / events,
        "fsyncs_bound": events / group * 2,
    }


def measure_period_book(folder: Path, events: int, group: int) -> float:
    book = PeriodBook.open(folder / f"pseudonym-periods-{group}.db", b"bench-secret-0123456789abcdef", ZoneInfo("Europe/Stockholm"))
    start_at = datetime(2026, 12, 3, 8, tzinfo=ZoneInfo("Europe/Stockholm"))
    before = io_counters()
    for start in range(0, events, group):
        for index in range(start, min(events, start + group)):
            book.period_for("call", f"c{index:010d}", start_at + timedelta(seconds=index))
        book.flush()
    book.close()
    return (io_counters()["write_bytes"] - before["write_bytes"]) / events


def measure_append_fsync(folder: Path, events: int) -> float:
    path = folder / "append.jsonl"
    before = io_counters()
    with open(path, "ab") as stream:
        for index in range(events):
            stream.write(json.dumps(event(index)).encode() + b"\n")
            stream.flush()
            os.fsync(stream.fileno())
    return (io_counters()["write_bytes"] - before["write_bytes"]) / events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not Path("/proc/self/io").exists():
        print("needs /proc/self/io (Linux)", file=sys.stderr)
        return 2
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="vardkoll-bench-sd-", dir=os.environ.get("BENCH_DIR")) as scratch:
        folder = Path(scratch)
        baseline = measure_append_fsync(folder, args.events)
        patterns = (("trickle", 1), ("small groups", 10), ("export", 500))
        results = {name: measure_outbox(folder, args.events, group) for name, group in patterns}
        for name, group in patterns:
            results[name]["book_write_bytes_per_new_call"] = measure_period_book(folder, args.events, group)
    print(f"load average {load}; {args.events} events per pattern; storage under {tempfile.gettempdir()}")
    print(f"baseline, append + fsync per event: {baseline / 1024:.1f} KiB per event")
    for name, numbers in results.items():
        print(
            f"{name:>13}: {numbers['write_bytes_per_event'] / 1024:7.2f} KiB written per event "
            f"(ratio to baseline {numbers['write_bytes_per_event'] / baseline:.2f}; handed to write(): {numbers['wchar_per_event'] / 1024:.2f} KiB); "
            f"period book {numbers['book_write_bytes_per_new_call'] / 1024:.2f} KiB per new call"
        )
    if args.json:
        args.json.write_text(json.dumps({"load": load, "baseline_write_bytes_per_event": baseline, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
