"""Figures per day, week or month over a span, for one unit or every unit of a region (SPEC 4)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from vardkoll.server.metrics import METRICS, MetricName, Period

from ..auth import visible_units
from ..figures.csv_rows import figures_csv
from ..figures.model import Figure
from ..figures.periods import Grain, periods_of
from ..storage.registry_tables import UnitRow
from .deps import FigureReader, ServicesDep, SessionDep, check_hsa_id, confine_to_region, confine_to_unit, invalid
from .figure_query import MAX_PERIOD_DAYS

router = APIRouter(tags=["compliance"])
MAX_PERIODS = 400  # a year and a month of days


SERIES_RESPONSE = {
    "model": list[Figure],
    "description": "One figure per unit and period, by unit, then by period; CSV with format=csv",
    "content": {"text/csv": {}},
}


@router.get("/series", responses={200: SERIES_RESPONSE})
def series(
    principal: FigureReader,
    session: SessionDep,
    services: ServicesDep,
    metric: Annotated[MetricName, Query(description=f"one of: {', '.join(METRICS)}")],
    grain: Annotated[Grain, Query(description="day, week (Monday–Sunday) or month")],
    period_from: Annotated[date, Query(alias="from", description="first local date; the first period starts here")],
    period_to: Annotated[date, Query(alias="to", description="last local date; the last period ends here")],
    unit: Annotated[str | None, Query(description="one unit's HSA-id")] = None,
    region: Annotated[str | None, Query(description="every unit of a region you may see")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: the same rows as the figure list's CSV download")] = "json",
) -> Response:
    """Each period's figure as of the end of that period, as `GET /compliance` gives it for the period."""
    if (unit is None) == (region is None):
        raise invalid("query", "unit", "give exactly one of unit or region")
    if period_to < period_from:
        raise invalid("query", "to", f"'to' ({period_to}) is before 'from' ({period_from})")
    if (period_to - period_from).days + 1 > MAX_PERIOD_DAYS:
        raise invalid("query", "to", f"the span is {(period_to - period_from).days + 1} days; at most {MAX_PERIOD_DAYS} (three years) are served")
    periods = periods_of(Period(period_from, period_to), grain)
    if len(periods) > MAX_PERIODS:
        raise invalid("query", "grain", f"that is {len(periods)} periods; at most {MAX_PERIODS}: choose a coarser grain or a shorter span")
    if unit is not None:
        confine_to_unit(session, principal, check_hsa_id(unit, "query", "unit"))
        units = [unit]
    else:
        assert region is not None
        confine_to_region(session, principal, region)
        registry = [(u, r) for u, r in session.execute(select(UnitRow.unit, UnitRow.region)).all() if r == region]
        units = visible_units(principal, registry)
    figures: list[dict[str, Any]] = []
    for one in units:
        figures.extend(services.figures.series(one, metric, periods))
    if format == "csv":
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", unit or region or "")  # a header is latin-1; the name must suit any file system
        filename = f"vardkoll-{label}-{metric}-{grain}-{period_from}-{period_to}.csv"
        return Response(figures_csv(figures), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return Response(orjson.dumps(figures), media_type="application/json")
