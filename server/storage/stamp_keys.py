"""Stamps as sortable strings: "<17-digit UTC epoch microseconds>|<event id>".

Comparing two keys as strings compares (instant, event id), which is exactly how the engine picks the
earliest event of a kind. So the database can keep the earliest with a plain string comparison, in
any order and from any number of processes at once.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from vardkoll.server.metrics.stamps import Stamp

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_us(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    # Seconds and microseconds given apart: a third faster than timedelta(microseconds=value), which
    # normalises one large number, and half the time of fromtimestamp(...).replace(...).
    return _EPOCH + timedelta(0, value // 1_000_000, value % 1_000_000)


def stamp_key(at: datetime, event_id: str) -> str:
    return stamp_key_us(epoch_us(at), event_id)


def stamp_key_us(at_us: int, event_id: str) -> str:
    """The key of an instant given as epoch microseconds."""
    return f"{at_us:017d}|{event_id}"


def stamp_of(key: str | None, tz: ZoneInfo) -> Stamp | None:
    if key is None:
        return None
    micros, event_id = key.split("|", 1)
    value = int(micros)
    return Stamp(from_epoch_us(value), event_id, local_date(value, tz))


# Local midnights as epoch microseconds, per time zone, for the dates of _FIRST_DAY.._LAST_DAY: the local
# date of an instant is then a binary search, several times faster than astimezone(tz).date(), which
# loading a month of calls (a few stamps per call) spends most of its time on. Built once per zone
# and process (about 20 000 dates, some 50 ms).
_FIRST_DAY = date(2000, 1, 1)
_LAST_DAY = date(2060, 1, 1)
_MIDNIGHTS: dict[ZoneInfo, list[int]] = {}
# Per zone, the local date found last and where it begins and ends: the stamps loaded together mostly
# share a date (a day's calls), and comparing with its bounds is a third of the search's time.
_LAST_FOUND: dict[ZoneInfo, tuple[int, int, date]] = {}


def local_date(value_us: int, tz: ZoneInfo) -> date:
    """The date in `tz` of the instant `value_us` (epoch microseconds); equals
    `from_epoch_us(value_us).astimezone(tz).date()`."""
    found = _LAST_FOUND.get(tz)
    if found is not None and found[0] <= value_us < found[1]:
        return found[2]
    midnights = _MIDNIGHTS.get(tz)
    if midnights is None:
        midnights = _MIDNIGHTS[tz] = _midnights(tz)
    index = bisect_right(midnights, value_us) - 1
    if 0 <= index < len(midnights) - 1:
        day = date.fromordinal(_FIRST_DAY.toordinal() + index)
        _LAST_FOUND[tz] = (midnights[index], midnights[index + 1], day)  # one tuple, replaced whole: safe between threads
        return day
    return from_epoch_us(value_us).astimezone(tz).date()


def _midnights(tz: ZoneInfo) -> list[int]:
    """The first instant of each local date. Where a DST change skips midnight, fold=0 gives the
    instant of the change itself, which is where that date begins."""
    first = _FIRST_DAY.toordinal()
    return [epoch_us(datetime.combine(date.fromordinal(day), time(0), tzinfo=tz)) for day in range(first, _LAST_DAY.toordinal() + 1)]
