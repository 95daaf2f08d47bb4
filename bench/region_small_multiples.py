"""Regionvy's small multiples for a region (not a timed test: numbers to read).

    .venv/bin/python bench/region_small_multiples.py DATABASE.sqlite --end 2026-12-04 [--rounds 3]

On a database built by `bench/dashboard_pages.py --clone N` (its region "Region Bänk"), computes the 12
months and the year so far of every unit, as Regionvy shows them, three ways in one process, alternating:
`per unit` (one `FigureService.series` per unit, the path before issue 18), `per period` (one
`FigureService.figures` batch of all units per period) and `sets` (one `FigureService.figure_sets`
call for all the periods, the page's path now: freshness read once, each period's whole set cached
under the units' data versions). `cold`: the figure cache emptied (stored figures and kept day parts
stay, as after a restart); `warm`: the same again. The answers are checked equal before the times
are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from typing import Any, Callable

from bench_common import machine


def main() -> int:
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage.registry_tables import UnitRow
    from vardkoll.server.web.region_view import whole_year
    from vardkoll.server.web.trends import month_periods

    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="the last day of the database's events")
    parser.add_argument("--metric", default="telephone")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    services = build_services(ServerSettings(database_url=f"sqlite:///{args.database}"), apply_migrations=True)
    with services.sessions() as session:
        codes = list(session.scalars(UnitRow.__table__.select().with_only_columns(UnitRow.unit).where(UnitRow.region == "Region Bänk")))
    periods = [p.period for p in month_periods(args.end)] + [whole_year(args.end, args.end + timedelta(days=1))]
    figures = services.figures

    def per_unit() -> dict[str, list[dict[str, Any]]]:
        return {code: figures.series(code, args.metric, periods) for code in codes}

    def per_period() -> dict[str, list[dict[str, Any]]]:
        batches = [figures.figures(codes, args.metric, period) for period in periods]
        return {code: [batch[i] for batch in batches] for i, code in enumerate(codes)}

    def sets() -> dict[str, list[dict[str, Any]]]:
        batches = figures.figure_sets(codes, [(args.metric, period) for period in periods])
        return {code: [batch[i] for batch in batches] for i, code in enumerate(codes)}

    ways: dict[str, Callable[[], dict[str, list[dict[str, Any]]]]] = {"per unit": per_unit, "per period": per_period, "sets": sets}
    answers = {name: way() for name, way in ways.items()}  # keeps day parts and stored figures, untimed
    without_data = {name: {c: [{k: v for k, v in f.items() if k != "data"} for f in fs] for c, fs in a.items()} for name, a in answers.items()}
    assert without_data["per unit"] == without_data["per period"] == without_data["sets"], "the ways disagree"
    times: dict[str, dict[str, list[float]]] = {name: {"cold": [], "warm": []} for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            figures.cache.clear()
            for kind in ("cold", "warm"):
                started = time.perf_counter()
                way()
                times[name][kind].append(time.perf_counter() - started)
    print(machine())
    print(f"{len(codes)} units, {args.metric}, 12 months and the year to {args.end}; ms, median of {args.rounds}")
    for name, kinds in times.items():
        print(f"  {name:10} " + "   ".join(f"{kind} {statistics.median(v) * 1000:6.0f}" for kind, v in kinds.items()))
    for kind in ("cold", "warm"):
        for name in ("per period", "sets"):
            print(f"  ratio {name} / per unit, {kind}: {statistics.median(times[name][kind]) / statistics.median(times['per unit'][kind]):.3f}")
    services.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
