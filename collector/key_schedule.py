"""The key schedule for call and case pseudonyms (docs/privacy.md, "Key schedule"). Not yet used by the pipeline.

A call or a case gets the key of one reporting period (a calendar month in the unit's time zone), so the
same source id in two periods gives two unrelated pseudonyms. The key is fixed for the thing's whole life:
it is the period of the first event of it this device saw, kept in `PeriodBook`, so a case opened on the
31st and assessed on the 2nd, or a queued call called back the next month, keeps one pseudonym and the
figures do not change. A source id seen again more than `life_days` from that first event is a new thing
(ticket numbers are reused), with the period of its own first event.

Period keys derive from the device's secret on the device (`keyed_digest`, HMAC-SHA256, over a label and the period); the
server never needs them. Patient and practitioner pseudonyms keep the secret itself: the continuity
metric links any two visits within 18 months, for every window end, which any rotation would break.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from .pseudonyms import keyed_digest

ROTATED_KINDS: Final = ("call", "case")
LIFE_DAYS: Final = {"call": 31, "case": 92}  # longer than any callback or assessment wait we expect


def period_of(at: datetime, tz: ZoneInfo) -> str:
    """The reporting period (`YYYY-MM`, local calendar month) an instant falls in."""
    if at.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return at.astimezone(tz).strftime("%Y-%m")


def period_key(secret: bytes, period: str) -> bytes:
    """The key of one period, derived from the device's secret; nothing else is needed to make it again."""
    return keyed_digest(secret, b"vardkoll period key v1\x1f" + period.encode("ascii"))


class PeriodBook:
    """Which period's key each call and case has, in a local SQLite table (the outbox's database).

    Rows hold a keyed digest of the source id, never the id itself."""

    def __init__(self, connection: sqlite3.Connection, secret: bytes, tz: ZoneInfo) -> None:
        self._db, self._secret, self._tz = connection, secret, tz
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pseudonym_periods (kind TEXT NOT NULL, ref TEXT NOT NULL, "
            "first_at_s INTEGER NOT NULL, period TEXT NOT NULL, PRIMARY KEY (kind, ref, first_at_s))"
        )

    def period_for(self, kind: str, raw: str, at: datetime) -> str:
        """The period whose key the call or case `raw` uses; the first event seen of it fixes it."""
        if kind not in ROTATED_KINDS:
            raise ValueError(f"{kind!r} pseudonyms are not rotated; rotated kinds: {', '.join(ROTATED_KINDS)}")
        ref = keyed_digest(self._secret, f"period book\x1f{kind}\x1f{raw}".encode()).hex()
        at_s = int(at.timestamp())
        life_s = int(timedelta(days=LIFE_DAYS[kind]).total_seconds())
        row = self._db.execute(
            "SELECT period FROM pseudonym_periods WHERE kind = ? AND ref = ? AND first_at_s BETWEEN ? AND ? ORDER BY abs(first_at_s - ?), first_at_s LIMIT 1",
            (kind, ref, at_s - life_s, at_s + life_s, at_s),
        ).fetchone()
        if row is not None:
            return str(row[0])
        period = period_of(at, self._tz)
        self._db.execute("INSERT INTO pseudonym_periods VALUES (?, ?, ?, ?)", (kind, ref, at_s, period))
        return period
