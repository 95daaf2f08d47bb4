"""Calendar periods of a grain (day, ISO week, month) that cover a span of local dates, clipped to it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from vardkoll.server.metrics import Period

Grain = Literal["day", "week", "month"]


def _next_start(day: date, grain: Grain) -> date:
    if grain == "day":
        return day + timedelta(days=1)
    if grain == "week":
        return day + timedelta(days=7 - day.weekday())  # the next Monday
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def periods_of(span: Period, grain: Grain) -> list[Period]:
    """The day, week (Monday–Sunday) or month periods from `span.start` to `span.end`; the first and the
    last are cut at the span's ends, so a week series from a Wednesday starts with Wednesday–Sunday."""
    periods = []
    start = span.start
    while start <= span.end:
        following = _next_start(start, grain)
        periods.append(Period(start, min(following - timedelta(days=1), span.end)))
        start = following
    return periods
