"""A region's figure: its units' figures summed, by ownership, beside the region's target and comparison."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy.orm import Session

from vardkoll.server.metrics import DEFINITION_VERSIONS, Period
from vardkoll.server.metrics.figures import SMALL_N, meets_target, share_of

from ..registry import UnitEntry, benchmarks_on
from ..storage.registry_tables import RegionBenchmark, UnitRow
from .service import FigureService

UNKNOWN_OWNERSHIP = "okänd"


def region_figure(
    figures: FigureService,
    session: Session,
    region: str,
    units: Sequence[UnitRow] | Sequence[UnitEntry],
    metric: str,
    period: Period,
    as_of: datetime | None = None,
    per_unit: list[dict[str, Any]] | None = None,
    benchmarks: dict[tuple[str, str], RegionBenchmark] | None = None,
) -> dict[str, Any]:
    """`per_unit`: the units' figures for the metric and period when the caller has them already
    (Regionvy's table), in the order of `units`; `benchmarks`: `benchmarks_on(session, region,
    period.end)` when the caller has read them for several metrics."""
    if per_unit is None:
        per_unit = figures.figures([row.unit for row in units], metric, period, as_of) if units else []
    ownership_of = {row.unit: row.ownership or UNKNOWN_OWNERSHIP for row in units}
    numerator = sum(f["numerator"] for f in per_unit)
    denominator = sum(f["denominator"] for f in per_unit)
    parts: dict[str, list[dict[str, Any]]] = {}
    for figure in per_unit:
        parts.setdefault(ownership_of[figure["unit"]], []).append(figure)
    if benchmarks is None:
        benchmarks = benchmarks_on(session, region, period.end)
    target, comparison = benchmarks.get((metric, "target")), benchmarks.get((metric, "comparison"))
    target_value = target.value if target else None
    return {
        "region": region,
        "metric": metric,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "numerator": numerator,
        "denominator": denominator,
        "share": share_of(numerator, denominator),
        "target": target_value,
        "meets_target": meets_target(numerator, denominator, target_value),
        "small_n": denominator < SMALL_N,
        "units": len(units),
        "units_without_data": sum(1 for f in per_unit if f["data"]["no_data"]),
        "by_ownership": [
            {
                "ownership": name,
                "units": len(part),
                "numerator": (n := sum(f["numerator"] for f in part)),
                "denominator": (d := sum(f["denominator"] for f in part)),
                "share": share_of(n, d),
            }
            for name, part in sorted(parts.items())
        ],
        "comparison": {"label": comparison.label, "value": comparison.value} if comparison else None,
        "definition_version": DEFINITION_VERSIONS[metric],
    }
