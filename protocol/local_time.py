"""Local-time rules every component shares: IANA time-zone names and weekly opening hours.

The wire carries instants with offsets; which local date and opening span an instant falls in depends on
these settings, so the server's registry, the replay's `--units` file, the jobs, the collector's
connectors and the bridge all check them here, with one message each.

Plain functions, no pydantic: the collector and the bridge import this module. The server's models take the
same rules as pydantic field types from `local_time_fields` (`TimeZoneName`, `OpeningHours`).
"""

from __future__ import annotations

import json
from datetime import time
from typing import Literal, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TIME_ZONE_EXAMPLE = "Europe/Stockholm"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Span = tuple[time, time]
SpansByWeekday = dict[int, tuple[Span, ...]]  # Monday is 0, as date.weekday()


def check_time_zone(name: str) -> str:
    """`name` if it is an IANA time zone this machine knows; ValueError with what to use otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as {TIME_ZONE_EXAMPLE}") from None
    return name


def check_opening_spans(hours: Mapping[str, Sequence[Span]]) -> Mapping[str, Sequence[Span]]:
    """Opening spans are local times without offset, each ending after it starts."""
    for day, spans in hours.items():
        for start, end in spans:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(f"{day}: opening hours are local times without offset, such as 08:00")
            if end <= start:
                raise ValueError(f"{day}: the opening span {start:%H:%M}–{end:%H:%M} ends before it starts")
    return hours


def spans_by_weekday(hours: Mapping[str, Sequence[Span]]) -> SpansByWeekday:
    """Checked opening hours keyed the way the metric rules read them."""
    return {WEEKDAYS.index(day): tuple(spans) for day, spans in hours.items()}


def opening_hours_text(hours: Mapping[str, Sequence[Span]] | None) -> str | None:
    """Opening hours as stored: JSON of "HH:MM" pairs, weekdays in calendar order."""
    if hours is None:
        return None

    def clock(moment: time) -> str:
        return moment.isoformat("minutes" if not (moment.second or moment.microsecond) else "auto")

    return json.dumps({day: [[clock(a), clock(b)] for a, b in hours[day]] for day in WEEKDAYS if day in hours})


def parse_opening_hours_text(text: str | None) -> SpansByWeekday | None:
    """The stored form back, keyed by weekday number."""
    if text is None:
        return None
    spans = json.loads(text)
    return {WEEKDAYS.index(day): tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in pairs) for day, pairs in spans.items()}
