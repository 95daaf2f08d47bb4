"""What several benchmarks share: percentiles, a description of the machine, a throwaway PostgreSQL.

The benchmarks run as scripts (`python bench/NAME.py`), so this folder is on sys.path and they import
it as `bench_common`.
"""

from __future__ import annotations

import os
import platform
import sys
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
