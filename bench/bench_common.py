"""What several benchmarks share: percentiles, a description of the machine, a throwaway PostgreSQL.

The benchmarks run as scripts (`python bench/NAME.py`), so this folder is on sys.path and they import
it as `bench_common`.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent


def percentile(values: list[float], share: float) -> float:
    """Linear interpolation between the closest ranks; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else float("nan"),
    }


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, load average {load}"


class MachineBusy:
    """How busy the whole machine's CPUs were over a span of a run, from `/proc/stat` read every
    `interval` s in a thread of its own (Linux; elsewhere it knows nothing). A page time under load
    means little without it: a machine whose cores are all busy queues every request, and a virtual
    machine whose host takes its time (steal) is slower than it looks."""

    def __init__(self, interval: float = 0.5) -> None:
        self._interval = interval
        self._samples: list[tuple[float, int, int, int]] = []  # (perf_counter, all, idle + iowait, steal) in ticks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="machine-busy", daemon=True)

    def __enter__(self) -> "MachineBusy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            ticks = _cpu_ticks()
            if ticks is None:
                return
            self._samples.append((time.perf_counter(), *ticks))
            if self._stop.wait(self._interval):
                return

    def between(self, start: float, end: float) -> tuple[float, float] | None:
        """(busy, steal) as shares of all the machine's CPU time from `start` to `end` (perf_counter
        times), from the samples nearest inside; None when fewer than two fall inside."""
        inside = [sample for sample in self._samples if start <= sample[0] <= end]
        if len(inside) < 2:
            return None
        (_, all0, idle0, steal0), (_, all1, idle1, steal1) = inside[0], inside[-1]
        total = all1 - all0
        if total <= 0:
            return None
        return 1 - (idle1 - idle0) / total, (steal1 - steal0) / total


def _cpu_ticks() -> tuple[int, int, int] | None:
    """The machine's CPU time so far, in ticks: all of it, idle (with waiting for I/O), stolen."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    steal = fields[7] if len(fields) > 7 else 0
    # guest time is already counted in user and nice
    return sum(fields[:8]), fields[3] + fields[4], steal


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster as the tests start one (tests/support/postgres.py), deleted afterwards."""
    with throwaway_postgres_databases(1) as (url,):
        yield url


@contextmanager
def throwaway_postgres_databases(count: int) -> Iterator[list[str]]:
    """`count` fresh databases in one throwaway cluster (fsync off, as in the tests)."""
    sys.path.insert(0, str(REPO / "tests"))
    from support.postgres import start_cluster  # type: ignore[import-not-found]  # tests/ is put on sys.path at run time

    cluster = start_cluster()
    try:
        yield [cluster.url(cluster.create_database("bench_")) for _ in range(count)]
    finally:
        cluster.stop()
