"""The query of a figure request (metric, period, as_of, format), checked with messages that say what to send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Query, Request, status

from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.metrics.calendar import DEFAULT_TIME_ZONE

MAX_PERIOD_DAYS = 3 * 366  # three years, leap days included
CSV = "text/csv"
# In a query string an unencoded "+" arrives as a space: "…T12:00:00 01:00" means "+01:00".
_SPACE_FOR_PLUS = re.compile(r"^(.*\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d(?::?\d\d)?)$")


@dataclass(frozen=True)
class FigureQuery:
    metric: str
    period: Period
    as_of: datetime | None
    csv: bool


def _date(value: str | None, name: str, problems: list[dict]) -> date | None:
    if value is None:
        problems.append(_problem(name, f"query parameter '{name}' is required: a local date such as 2026-03-31"))
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(_problem(name, f"query parameter '{name}' must be a date such as 2026-03-31"))
        return None


def _today(request: Request, problems: list[dict]) -> date | None:
    """`to` left out: today, in the time zone of the unit asked for (or of every unit asked for, when
    they share one: a region's units in several zones have no one "today")."""
    units_registry = request.app.state.services.units
    unit = request.path_params.get("unit")
    region = request.query_params.get("region")
    units = [unit] if unit else units_registry.units_of_region(region) if region else units_registry.all_units()
    zones = {units_registry.config(u).time_zone for u in units} or {DEFAULT_TIME_ZONE}
    if len(zones) > 1:
        problems.append(_problem("to", f"query parameter 'to' is required here: the units are in {len(zones)} time zones, so 'today' is not one date"))
        return None
    return _now().astimezone(ZoneInfo(zones.pop())).date()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_moment(value: str) -> datetime | None:
    """An RFC 3339 time with offset, or None when `value` is no such time (naive times included)."""
    try:
        moment = datetime.fromisoformat(_SPACE_FOR_PLUS.sub(r"\1+\2", value.strip()))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _problem(name: str, message: str) -> dict:
    return {"loc": ["query", name], "msg": message, "type": "value_error"}


def figure_query(
    request: Request,
    metric: Annotated[str | None, Query(description=f"one of: {', '.join(METRICS)}")] = None,
    period_from: Annotated[str | None, Query(alias="from", description="first local date of the period")] = None,
    period_to: Annotated[str | None, Query(alias="to", description="last local date of the period (default: today in the units' time zone)")] = None,
    as_of: Annotated[str | None, Query(description="count only events at or before this time (with offset)")] = None,
    format: Annotated[str | None, Query(description="json (default) or csv")] = None,
) -> FigureQuery:
    problems: list[dict] = []
    if metric is None:
        problems.append(_problem("metric", f"query parameter 'metric' is required: one of {', '.join(METRICS)}"))
    elif metric not in METRICS:
        problems.append(_problem("metric", f"unknown metric {metric[:40]!r}; expected one of: {', '.join(METRICS)}"))
    start = _date(period_from, "from", problems)
    end = _date(period_to, "to", problems) if period_to is not None else _today(request, problems)
    if start and end and end < start:
        said = "" if period_to is not None else ", today, the default"
        problems.append(_problem("to", f"'to' ({end}{said}) is before 'from' ({start})"))
    elif start and end and (end - start).days + 1 > MAX_PERIOD_DAYS:
        problems.append(_problem("to", f"the period is {(end - start).days + 1} days; at most {MAX_PERIOD_DAYS} (three years) are served"))
    moment = None
    if as_of is not None:
        moment = parse_moment(as_of)
        if moment is None:
            problems.append(_problem("as_of", "'as_of' must be a time with offset such as 2026-03-31T12:00:00+02:00 (encode + as %2B)"))
    if format not in (None, "json", "csv"):
        problems.append(_problem("format", "'format' must be json or csv"))
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems)
    wants_csv = format == "csv" or (format is None and CSV in request.headers.get("accept", ""))
    return FigureQuery(metric, Period(start, end), moment, wants_csv)  # type: ignore[arg-type]  # metric is checked against METRICS above; problems end the call before here


FigureQueryDep = Annotated[FigureQuery, Depends(figure_query)]
