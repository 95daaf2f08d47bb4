"""Earliest-wins bookkeeping shared by the metric ledgers."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Hashable, NamedTuple, TypeVar

Key = TypeVar("Key", bound=Hashable)  # a call or case pseudonym


class Stamp(NamedTuple):
    """When something happened: the instant, the event id (breaks ties, so the earliest is the same
    whatever order events arrive in) and the unit-local date."""

    at: datetime
    event_id: str
    day: date


def new_stamp(at: datetime, event_id: str, day: date) -> Stamp:
    """A stamp at `at` as a UTC time. Two datetimes with different offsets compare through their
    offsets, about ten times slower than two in UTC; a figure compares every stamp with its moment
    (`instant`), and the earliest-wins rule compares stamps with each other. Stamps read back from the
    database are in UTC too, so a replayed ledger and a stored one hold the same values."""
    return _make_stamp(Stamp, (at.astimezone(timezone.utc), event_id, day))


_make_stamp = tuple.__new__  # a NamedTuple's own __new__ is Python code: a third of a stamp's cost


def instant(moment: datetime) -> datetime:
    """`moment` in UTC, to compare with stamps quickly: the same instant, so every comparison gives
    what it gave with `moment` itself. A naive moment stays as it is (and fails as it did)."""
    return moment if moment.tzinfo is None else moment.astimezone(timezone.utc)


def earlier(current: Stamp | None, candidate: Stamp) -> bool:
    """True when `candidate` should replace `current` as the earliest of its kind."""
    return current is None or (candidate.at, candidate.event_id) < (current.at, current.event_id)


def known(stamp: Stamp | None, as_of: datetime) -> Stamp | None:
    """The stamp if it was known at `as_of`, else None. Because only the earliest of a kind is kept,
    this is exactly "the earliest event of this kind among those known at `as_of`"."""
    return stamp if stamp is not None and stamp.at <= as_of else None


def move(buckets: dict[date, set[Key]], key: Key, old: Stamp | None, new: Stamp) -> None:
    """Keep a date index current when an entity's anchoring stamp changes."""
    if old is not None:
        if old.day == new.day:
            return
        old_bucket = buckets[old.day]
        old_bucket.discard(key)
        if not old_bucket:
            del buckets[old.day]
    bucket = buckets.get(new.day)
    if bucket is None:
        buckets[new.day] = {key}
    else:
        bucket.add(key)
