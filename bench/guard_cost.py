"""What the personal-number guard costs on the hot paths, against an earlier guard in the same run.

    .venv/bin/python bench/guard_cost.py                        # against the ASCII-only guard (before issue 12)
    .venv/bin/python bench/guard_cost.py --baseline-rev main --repeat 5

The baseline is `protocol/personal_number.py` as of `--baseline-rev`, loaded from git beside the current
one. On the replay benchmark's event file (made by bench/replay.py, cached under bench/data/), each
round measures, with the baseline guard and then the current one swapped into the modules that use it,
the CPU time of: replay's block parse (server/replay/blocks.parse_block), MQTT batches of 100
(protocol.parse_batch) and one line at a time (protocol.parse_event_line). Prints the best of
`--repeat` rounds and the throughput ratio current / baseline. CPU time, not wall time, so that a
shared machine disturbs it less; say the load beside any number you quote (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from replay import data_file, ensure_events  # noqa: E402

from vardkoll.protocol import batches, personal_number, validation  # noqa: E402
from vardkoll.server.replay import blocks  # noqa: E402

GUARD_BEFORE_ISSUE_12 = "c851212"  # the ASCII-only guard


def baseline_guard(rev: str) -> ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:protocol/personal_number.py"], cwd=REPO, capture_output=True, check=True).stdout
    with tempfile.NamedTemporaryFile("wb", suffix=".py", delete=False) as file:
        file.write(source)
    spec = importlib.util.spec_from_file_location("baseline_guard", file.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(file.name)
    return module


def use(guard: ModuleType) -> None:
    for module in (validation, batches, blocks):
        module.raw_may_contain_personal_number = guard.raw_may_contain_personal_number  # type: ignore[attr-defined]  # swapped for the run
    validation.find_personal_number = guard.find_personal_number  # type: ignore[attr-defined]  # swapped for the run


def cpu_s(run: Callable[[], object]) -> float:
    started = time.process_time()
    run()
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-rev", default=GUARD_BEFORE_ISSUE_12, help="git revision of the baseline guard")
    parser.add_argument("--events", type=int, default=300_000, help="lines in the event file (default 300 000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of each is shown (default 3)")
    args = parser.parse_args(argv)
    path = data_file(BENCH_DIR / "data", args.events, 1, 40)
    ensure_events(path, args.events, 1, 40, False)
    lines = path.read_bytes().splitlines()
    block_lines = [b"\n".join(lines[i : i + 20_000]) for i in range(0, len(lines), 20_000)]
    mqtt = [b'{"device":"pi-1","events":[' + b",".join(lines[i : i + 100]) + b"]}" for i in range(0, len(lines), 100)]
    paths = {
        "replay block parse": lambda: [blocks.parse_block(block, 1) for block in block_lines],
        "MQTT batches of 100": lambda: [batches.parse_batch(batch, 1000) for batch in mqtt],
        "one line at a time": lambda: [validation.parse_event_line(line) for line in lines],
    }
    guards = {"baseline": baseline_guard(args.baseline_rev), "current": personal_number}
    best: dict[tuple[str, str], float] = {}
    print(f"{len(lines):,} lines; baseline guard {args.baseline_rev}; load average {os.getloadavg()[0]:.1f}")
    for _ in range(args.repeat):
        for name, guard in guards.items():
            use(guard)
            for label, run in paths.items():
                spent = cpu_s(run)
                best[(name, label)] = min(spent, best.get((name, label), float("inf")))
    use(personal_number)
    print(f"{'':24s}{'baseline':>16s}{'current':>16s}{'current/baseline':>20s}")
    for label in paths:
        old, new = best[("baseline", label)], best[("current", label)]
        per = 1e6 / len(lines)
        print(f"{label:24s}{old * per:11.2f} µs/ev{new * per:11.2f} µs/ev{old / new:17.3f}×")
    print(f"load average afterwards {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
