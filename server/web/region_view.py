"""What Regionvy shows: every unit of a region for a period, filtered and sorted, the share of units
at target, "X av Y klarar målet för hela året" and a small chart per unit; no HTML here.

Every number is `FigureService.figures(units, metric, period)`, as `GET /api/v1/compliance?region=`
answers for the same metric and period. `region_table` is the table alone (filtered and sorted), which
the page and its CSV export share, so the export holds exactly the rows the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from urllib.parse import quote, urlencode

from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.metrics.calendar import months_earlier

from ..services import Services
from ..registry import UnitEntry
from .region_rows import ROWS, RegionRow, UnitFigures
from .trends import MONTH_NAMES, month_periods

SORT_KEYS = ("namn", *METRICS)
_Row = TypeVar("_Row", bound=UnitFigures)


@dataclass
class AtTarget:
    meeting: int  # units whose share meets the target
    measured: int  # units with a share and a target
    units: int  # all units (the others: no data or no target)


@dataclass
class Filters:
    metric: str = "telephone"  # the metric of the small multiples, the year and `only_missing`
    only_missing: bool = False  # only units that do not meet the target (under it, or no data)
    search: str = ""  # part of a unit's name or HSA-id, any case

    def keeps(self, row: UnitFigures) -> bool:
        if self.search and self.search.casefold() not in f"{row.unit.name} {row.unit.unit}".casefold():
            return False
        return not self.only_missing or row.figures[self.metric]["meets_target"] is not True

    @property
    def active(self) -> bool:
        return self.only_missing or bool(self.search)


@dataclass
class RegionView:
    region: str
    period: Period
    year: Period  # whole_year
    rows: list[RegionRow]  # after the filters
    units: int  # before the filters
    at_target: dict[str, AtTarget]  # all units, the period
    year_at_target: AtTarget  # all units, the chosen metric, the year so far
    filters: Filters
    sort: str
    descending: bool
    by_metric: dict[str, list[dict[str, Any]]]  # every unit's figures for the period, in the units' order, before the filters


def whole_year(end: date, today: date) -> Period:
    """ "Hela året": 1 January to `end`, in whole days only, so through yesterday when `end` is today
    (on 1 January that is the whole previous year). A period that ended yesterday stays cached, and
    stored, while today's events arrive (server/figures/store.py)."""
    last = min(end, today - timedelta(days=1))
    return Period(date(last.year, 1, 1), last)


def _at_target(figures: list[dict[str, Any]]) -> AtTarget:
    measured = [f for f in figures if f["meets_target"] is not None]
    return AtTarget(sum(1 for f in measured if f["meets_target"]), len(measured), len(figures))


def _sorted(rows: list[_Row], sort: str, descending: bool) -> list[_Row]:
    if sort in METRICS:
        # Units without a share always last, whatever the direction: silence is not a low or a high value.
        with_share = [r for r in rows if r.figures[sort]["share"] is not None]
        without = [r for r in rows if r.figures[sort]["share"] is None]
        with_share.sort(key=lambda r: (r.figures[sort]["share"], r.unit.name), reverse=descending)
        return with_share + sorted(without, key=lambda r: r.unit.name)
    return sorted(rows, key=lambda r: (r.unit.name.casefold(), r.unit.unit), reverse=descending)


def _figure_sets(services: Services, codes: list[str], wanted: list[tuple[str, Period]]) -> list[list[dict[str, Any]]]:
    return services.figures.figure_sets(codes, wanted) if codes else [[] for _ in wanted]


def _table(units: list[UnitEntry], by_metric: dict[str, list[dict[str, Any]]], sort: str, descending: bool) -> list[UnitFigures]:
    return _sorted([UnitFigures(row, {m: by_metric[m][i] for m in METRICS}) for i, row in enumerate(units)], sort, descending)


def region_table(services: Services, units: list[UnitEntry], period: Period, sort: str, descending: bool) -> list[UnitFigures]:
    """Every unit with its four figures for the period, in the table's order (before the filters)."""
    sets = _figure_sets(services, [row.unit for row in units], [(m, period) for m in METRICS])
    return _table(units, dict(zip(METRICS, sets)), sort, descending)


def region_view(
    services: Services, units: list[UnitEntry], region: str, period: Period, sort: str, descending: bool, filters: Filters, today: date
) -> RegionView:
    year = whole_year(period.end, today)
    months = month_periods(period.end)
    # Every set the page shows in one call (the table's four metrics, then per period one set of all
    # units for the small multiples and the year): the freshness is read once, and a set whose units
    # have no new data comes whole from the cache (server/figures/cache.py, "Whole sets"). The kept
    # figures themselves: a unit whose figures are all the objects they were is shown by the row
    # built from them before (`region_rows`).
    codes = [row.unit for row in units]
    wanted = [(m, period) for m in METRICS] + [(filters.metric, p) for p in [m.period for m in months] + [year]]
    if codes:
        kept = services.figures.kept_figure_sets(codes, wanted)
        in_unit_order = ROWS.rows(units, kept.sets, kept.blocks, period, filters.metric, months, year)
    else:
        in_unit_order = []
    by_metric = {m: [row.figures[m] for row in in_unit_order] for m in METRICS}
    rows = _sorted(in_unit_order, sort, descending)
    at_target = {m: _at_target(by_metric[m]) for m in METRICS}
    return RegionView(
        region,
        period,
        year,
        [r for r in rows if filters.keeps(r)],
        len(rows),
        at_target,
        _at_target([r.year for r in rows]),
        filters,
        sort,
        descending,
        by_metric,
    )


@dataclass(frozen=True)
class Downloads:
    """What Regionvy offers as files, all from the API (which accepts the session cookie on GET): the
    national report of a month, each unit's clinic profile for it, and the 12-month series per metric."""

    month: date  # the first day of the report's and the profiles' month
    report: list[tuple[str, str]]  # (label, address)
    profiles: dict[str, str]  # unit → address
    series: dict[str, str]  # metric → address
    series_period: Period

    @property
    def month_name(self) -> str:
        return f"{MONTH_NAMES[self.month.month - 1]} {self.month.year}"


def report_month(end: date, today: date) -> date:
    """The month of the period's end when it has ended, else the month before: the report and the
    profile are of ended months."""
    start = end.replace(day=1)
    return start if months_earlier(start, -1) <= today else months_earlier(start, 1)


def downloads(region: str, period: Period, today: date, units: list[UnitEntry], internal_allowed: bool) -> Downloads:
    month = report_month(period.end, today)
    report_base = f"/api/v1/reports/monthly/{quote(region, safe='')}/{month:%Y-%m}"
    variants = [("public", "offentlig")] + ([("internal", "intern")] if internal_allowed else [])
    report = [
        (f"{kind.upper()}, {label}", f"{report_base}?{urlencode({'variant': variant, 'format': kind})}")
        for variant, label in variants
        for kind in ("csv", "xlsx")
    ]
    of_month = f"/profile.pdf?month={month:%Y-%m}"  # formatted once: per unit it was 0.7 ms of every page
    profiles = {row.unit: f"/api/v1/units/{quote(row.unit)}{of_month}" for row in units}
    span = Period(month_periods(period.end)[0].period.start, period.end)
    series = {
        m: "/api/v1/series?"
        + urlencode({"metric": m, "region": region, "grain": "month", "from": span.start.isoformat(), "to": span.end.isoformat(), "format": "csv"})
        for m in METRICS
    }
    return Downloads(month, report, profiles, series, span)
