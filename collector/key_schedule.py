"""The key schedule for call and case pseudonyms (docs/privacy.md, "Pseudonyms and the key schedule").

A call or a case gets the key of one reporting period (a calendar month in the unit's time zone), so the
same source id in two periods gives two unrelated pseudonyms. The key is fixed for the thing's whole life:
it is the period of the first event of it this device saw, kept in `PeriodBook`, so a case opened on the
31st and assessed on the 2nd, or a queued call called back the next month, keeps one pseudonym and the
figures do not change. A source id seen again more than `LIFE_DAYS` from that first event is a new thing
(ticket numbers are reused), with the period of its own first event.

Period keys derive from the device's secret on the device (`keyed_digest`, HMAC-SHA256, over a label and
the period), so the secret's backup (`vardkoll collector export-secret`) restores every period's key; the
server never needs them. Patient and practitioner pseudonyms keep the secret itself: the continuity
metric links any two visits within 18 months, for every window end, which any rotation would break.

The book is written before the events it keyed reach the outbox (`flush()`, called by the agent and the
bridge before `Outbox.add`): after a crash a re-read source finds the same periods, so an event read twice
carries the same pseudonyms and a case is never split by a restart.

A device that made pseudonyms before the schedule existed (its outbox is older than its book) keeps the
secret's own key (`LEGACY`) for everything that happened before the book was started, and for a thing
first seen within its life after that which continues one the device already sent (`was_legacy`, the
lookup map; without one, every such thing), so an upgrade splits no open case and a re-read of old
source data gives the pseudonyms it gave then.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Final
from zoneinfo import ZoneInfo

from .pseudonyms import keyed_digest, period_key
from .sqlite_memory import limit_page_cache

# The rotated kinds and how long one thing lives: longer than any callback or assessment wait we expect.
# `case-unlinked` is the firmware bridge's case of a panel press without a ticket.
LIFE_DAYS: Final = {"call": 31, "case": 92, "case-unlinked": 92}
ROTATED_KINDS: Final = tuple(LIFE_DAYS)
LEGACY: Final = "legacy"  # the period of things keyed with the secret itself, as before the schedule
KEEP_DAYS: Final = 400  # book rows are kept this long after a thing's first event: re-reads of a year stay alike

__all__ = ["KEEP_DAYS", "LEGACY", "LIFE_DAYS", "ROTATED_KINDS", "PeriodBook", "period_key", "period_of"]


def period_of(at: datetime, tz: ZoneInfo) -> str:
    """The reporting period (`YYYY-MM`, local calendar month) an instant falls in."""
    if at.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return at.astimezone(tz).strftime("%Y-%m")


class PeriodBook:
    """Which period's key each call and case has, in a local SQLite table.

    Rows hold a keyed digest of the source id, never the id itself. Safe to share between threads (the
    bridge's serial ports); new rows are written at `flush()`."""

    def __init__(self, connection: sqlite3.Connection, secret: bytes, tz: ZoneInfo, legacy_before: datetime | None = None) -> None:
        self._db, self._secret, self._tz = connection, secret, tz
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pseudonym_periods (kind TEXT NOT NULL, ref TEXT NOT NULL, "
            "first_at_s INTEGER NOT NULL, period TEXT NOT NULL, PRIMARY KEY (kind, ref, first_at_s))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS book_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        if legacy_before is not None:
            self._db.execute("INSERT OR IGNORE INTO book_meta VALUES ('legacy_before_s', ?)", (str(int(legacy_before.timestamp())),))
        row = self._db.execute("SELECT value FROM book_meta WHERE name = 'legacy_before_s'").fetchone()
        self.legacy_before_s: int | None = int(row[0]) if row else None
        self._db.commit()

    @classmethod
    def open(cls, path: Path | str, secret: bytes, tz: ZoneInfo, *, upgraded: bool = False, now: Callable[[], float] = time.time) -> "PeriodBook":
        """The book in `path` (mode 0600, created if missing). `upgraded`: the device made pseudonyms before
        the book existed; if the book is new, everything before `now` keeps the legacy key."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)  # 0600 before anything is written into it
        os.close(descriptor)
        os.chmod(path, 0o600)
        connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA page_size=1024")  # a new book: small pages, few bytes per commit on an SD card (as the outbox)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # a flushed period survives power loss, like the outbox
        limit_page_cache(connection)
        legacy_before = datetime.fromtimestamp(now(), timezone.utc) if new and upgraded else None
        return cls(connection, secret, tz, legacy_before)

    def period_for(self, kind: str, raw: str, at: datetime, was_legacy: Callable[[], bool] | None = None) -> str:
        """The period whose key the call or case `raw` uses; the first event seen of it fixes it.

        `was_legacy`: asked only on an upgraded device, for a thing first seen within its life after the
        upgrade: whether the device sent it with the legacy key before (the lookup map knows). None (no
        lookup map, as for the firmware bridge): such a thing keeps the legacy key."""
        if kind not in LIFE_DAYS:
            raise ValueError(f"{kind!r} pseudonyms are not rotated; rotated kinds: {', '.join(ROTATED_KINDS)}")
        ref = keyed_digest(self._secret, f"period book\x1f{kind}\x1f{raw}".encode()).hex()
        at_s = int(at.timestamp())
        life_s = int(timedelta(days=LIFE_DAYS[kind]).total_seconds())
        with self._lock:
            row = self._db.execute(
                "SELECT period FROM pseudonym_periods WHERE kind = ? AND ref = ? AND first_at_s BETWEEN ? AND ? "
                "ORDER BY abs(first_at_s - ?), first_at_s LIMIT 1",
                (kind, ref, at_s - life_s, at_s + life_s, at_s),
            ).fetchone()
            if row is not None:
                return str(row[0])
            period = period_of(at, self._tz)
            legacy_before = self.legacy_before_s
            if legacy_before is not None and at_s < legacy_before + life_s:
                # Within a life of the upgrade the thing may have begun before it, under the legacy key;
                # without a lookup map to ask, assume it did: splitting a case would change a figure.
                if at_s < legacy_before or was_legacy is None or was_legacy():
                    period = LEGACY
            self._db.execute("INSERT INTO pseudonym_periods VALUES (?, ?, ?, ?)", (kind, ref, at_s, period))
            return period

    def flush(self) -> None:
        """Write the periods given out since the last flush (before their events reach the outbox)."""
        with self._lock:
            self._db.commit()

    def prune(self, now: datetime) -> int:
        """Forget things whose first event is more than `KEEP_DAYS` old; the agent calls it once a day."""
        with self._lock:
            cutoff = int((now - timedelta(days=KEEP_DAYS)).timestamp())
            deleted = self._db.execute("DELETE FROM pseudonym_periods WHERE first_at_s < ?", (cutoff,)).rowcount
            self._db.commit()
            return deleted

    def close(self) -> None:
        with self._lock:
            self._db.commit()
            self._db.close()
