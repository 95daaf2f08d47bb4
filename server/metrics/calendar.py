"""Local calendar arithmetic for a unit: every metric counts local dates, never UTC ones."""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Iterable, Iterator, Mapping, TypeVar
from zoneinfo import ZoneInfo

DEFAULT_TIME_ZONE = "Europe/Stockholm"
ONE_MICROSECOND = timedelta(microseconds=1)

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Period:
    """A closed range of local dates [start, end]."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The last instant of a local date: the next local midnight minus one microsecond (23 or 25 hours
    after the day began on DST days, which zoneinfo handles)."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return next_midnight - ONE_MICROSECOND


def months_earlier(day: date, months: int) -> date:
    """The same date `months` earlier, clamped to the end of a shorter month (2026-08-31 → 2025-02-28)."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    last = _calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def days_in(buckets: Mapping[date, V], period: Period) -> Iterator[tuple[date, V]]:
    """The (date, bucket) pairs of `buckets` inside `period`, cheaply for short and long periods alike."""
    span = (period.end - period.start).days + 1
    if span <= len(buckets):
        for offset in range(span):
            day = period.start + timedelta(days=offset)
            bucket = buckets.get(day)
            if bucket is not None:
                yield day, bucket
    else:
        for day, bucket in buckets.items():
            if day in period:
                yield day, bucket


def span_of(days: Iterable[date]) -> Period | None:
    days = list(days)
    return Period(min(days), max(days)) if days else None
