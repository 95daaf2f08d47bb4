"""What one live update costs the server, with and without the kept ledgers (server/figures/kept_ledgers.py),
in one run: the work behind live_latency.py's tail, without the machine's noise of a whole app.

    .venv/bin/python bench/live_update_cost.py [--batches 600] [--postgres]

Two databases get the same start (live_latency.py's 100 units in 5 regions, each with one realistic day
of today's data). Then batch after batch of that benchmark's stream (50 events for one unit, the units
in turn) is ingested into both, and after each the update a live stream of the unit and one of its
region would make is timed: `FigureService.figure_sets` of the unit, then of the region's 20 units, the
four metrics of today. One database's figure service keeps each day it read and reads its changed rows
only; the other's reads the changed unit's day whole (`kept_ledgers = None`, as before 2026-12-07). The
two alternate who goes first. Printed: mean / p50 / p95 of an update, the first fifth left out (days
read whole the first time), and the ratio of the means.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from tempfile import TemporaryDirectory

import orjson

from bench_common import machine, percentile, throwaway_postgres_databases
from live_latency import STOCKHOLM, make_batches, make_workload, prepare_database, region_of

METRICS = ("telephone", "assessment", "continuity", "fixed_doctor")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=600)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--regions", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="two databases in a throwaway PostgreSQL cluster (default: two SQLite files)")
    args = parser.parse_args()

    from vardkoll.protocol import parse_event_line
    from vardkoll.server.ingest.service import Source
    from vardkoll.server.metrics import Period
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings

    today = datetime.now(STOCKHOLM).date()
    work = make_workload(1, args.units, -(-args.batches // args.units) * 49, today)
    batches, _ = make_batches(work, args.batches, 50)
    per_region = len(work.units) // args.regions
    regions: dict[str, list[str]] = {}
    for index, unit in enumerate(work.units):
        regions.setdefault(region_of(index, per_region), []).append(unit)
    region_of_unit = {unit: region for region, units in regions.items() for unit in units}
    with ExitStack() as stack:
        if args.postgres:
            urls = stack.enter_context(throwaway_postgres_databases(2))
        else:
            folder = Path(stack.enter_context(TemporaryDirectory(prefix="vardkoll-update-cost-")))
            urls = [f"sqlite:///{folder / name}.sqlite" for name in ("kept", "whole")]
        for url in urls:
            prepare_database(url, work, args.regions)
        kept, whole = (build_services(ServerSettings(database_url=url)) for url in urls)
        whole.figures.kept_ledgers = None
        print(machine())
        print(
            f"{'PostgreSQL' if args.postgres else 'SQLite'}, {len(work.units)} units, {len(batches)} batches of 50; a unit's and its region's update after each"
        )
        period = Period(today, today)
        wanted = [(metric, period) for metric in METRICS]
        times: dict[str, list[float]] = {"kept": [], "whole": []}
        for number, batch in enumerate(batches):
            document = orjson.loads(batch.payload)
            for event in document["events"]:
                event["at"] = event["at"] or datetime.now(timezone.utc).isoformat()
            items = [parse_event_line(orjson.dumps(event)) for event in document["events"]]
            order = (("kept", kept), ("whole", whole)) if number % 2 else (("whole", whole), ("kept", kept))
            for name, services in order:
                services.ingest.ingest(items, Source("http"))
                started = time.perf_counter()
                services.figures.figure_sets([batch.unit], wanted)
                services.figures.figure_sets(regions[region_of_unit[batch.unit]], wanted)
                times[name].append((time.perf_counter() - started) * 1000)
        for name, values in times.items():
            measured = values[len(values) // 5 :]
            print(f"  {name:5}  mean {statistics.mean(measured):6.2f} ms   p50 {percentile(measured, 0.5):6.2f}   p95 {percentile(measured, 0.95):6.2f}")
        assert kept.figures.kept_ledgers is not None
        print(f"  kept: days read {kept.figures.kept_ledgers.reads}")
        ratio = statistics.mean(times["kept"][len(batches) // 5 :]) / statistics.mean(times["whole"][len(batches) // 5 :])
        print(f"  kept / whole (means): {ratio:.2f}")
        for services in (kept, whole):
            services.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
