"""Klinikvy's trends and Regionvy's small multiples: the API's figures for a run of weeks or months.

Every point is `FigureService` asked for exactly the period a person would ask the API for: a whole
ISO week (Monday–Sunday) or calendar month, and for the current one the days so far (Monday or the
first of the month up to the day shown). So a point equals
`GET /api/v1/units/{unit}/compliance?metric=M&from=…&to=…`, cache and all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.metrics.calendar import months_earlier

from ..figures import FigureService
from .charts import TrendPoint

WEEKS = 12
MONTHS = 12
MONTH_NAMES = ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober", "november", "december")
SHORT_MONTHS = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")


@dataclass(frozen=True)
class TrendPeriod:
    period: Period
    label: str
    long_label: str
    partial: bool


def week_periods(day: date, count: int = WEEKS) -> list[TrendPeriod]:
    """The ISO weeks up to the one holding `day`, oldest first; the last one ends at `day`."""
    monday = day - timedelta(days=day.weekday())
    result = []
    for back in range(count - 1, -1, -1):
        start = monday - timedelta(weeks=back)
        end = min(start + timedelta(days=6), day)
        year, week, _ = start.isocalendar()
        result.append(TrendPeriod(Period(start, end), f"{week}", f"vecka {week} {year}", end < start + timedelta(days=6)))
    return result


def month_periods(day: date, count: int = MONTHS) -> list[TrendPeriod]:
    """The calendar months up to the one holding `day`, oldest first; the last one ends at `day`."""
    result = []
    for back in range(count - 1, -1, -1):
        start = months_earlier(day.replace(day=1), back)
        following = months_earlier(start, -1)
        end = min(following - timedelta(days=1), day)
        result.append(
            TrendPeriod(Period(start, end), SHORT_MONTHS[start.month - 1], f"{MONTH_NAMES[start.month - 1]} {start.year}", end < following - timedelta(days=1))
        )
    return result


def point(period: TrendPeriod, figure: dict[str, Any]) -> TrendPoint:
    return TrendPoint(
        period.label, period.long_label, figure["share"], figure["numerator"], figure["denominator"], bool(figure["details"].get("small_n")), period.partial
    )


@dataclass
class Trend:
    metric: str
    periods: list[TrendPeriod]
    figures: list[dict[str, Any]]
    target: float | None  # of the latest period

    @property
    def points(self) -> list[TrendPoint]:
        return [point(p, f) for p, f in zip(self.periods, self.figures)]


def unit_trends(figures: FigureService, unit: str, day: date) -> dict[str, dict[str, Trend]]:
    """{metric: {"weeks": Trend, "months": Trend}} for one unit up to `day`."""
    weeks, months = week_periods(day), month_periods(day)
    result: dict[str, dict[str, Trend]] = {}
    for metric in METRICS:
        # One series for both, so the stored rows are read once (FigureService.series).
        series = figures.series(unit, metric, [p.period for p in weeks + months])
        result[metric] = {
            "weeks": Trend(metric, weeks, series[: len(weeks)], series[len(weeks) - 1]["target"]),
            "months": Trend(metric, months, series[len(weeks) :], series[-1]["target"]),
        }
    return result
