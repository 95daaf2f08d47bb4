"""Stamps as sortable strings: "<17-digit UTC epoch microseconds>|<event id>".

Comparing two keys as strings compares (instant, event id), which is exactly how the engine picks the
earliest event of a kind. So the database can keep the earliest with a plain string comparison, in
any order and from any number of processes at once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from vardkoll.server.metrics.stamps import Stamp

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_us(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, timezone.utc).replace(microsecond=value % 1_000_000)


def stamp_key(at: datetime, event_id: str) -> str:
    return f"{epoch_us(at):017d}|{event_id}"


def stamp_of(key: str | None, tz: ZoneInfo) -> Stamp | None:
    if key is None:
        return None
    micros, event_id = key.split("|", 1)
    at = from_epoch_us(int(micros))
    return Stamp(at, event_id, at.astimezone(tz).date())
