"""The clinic's way back from a pseudonym to its own system: pseudonym -> the source's reference.

Staff read an alert or Klinikvy ("case kXbq…"), and on the collector run `vardkoll collector lookup
PSEUDONYM` to get what their own systems know the case or call by (a booking id, a queue call id, a FHIR
Appointment id). The map is written by the pipeline (`collector/pipeline.py`), where raw ids meet the
secret, for the references staff act on: cases and calls, never patients or practitioners.

- Local only: a SQLite file beside the outbox, mode 0600, never read by the publisher, never sent.
- Bounded in time: a reference is answered for `retention_days` (60) after it was last seen, and deleted after.
- A reference that is a personal identity number (`protocol.personal_number`) is not kept: the row says
  so, and the lookup answers that the source must be searched by the time instead.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vardkoll.protocol.personal_number import contains_personal_number

from .sqlite_memory import limit_page_cache

log = logging.getLogger("vardkoll.collector.lookup")

KINDS = frozenset({"case", "call"})  # the references staff look up; patients and practitioners never
FLUSH_EVERY = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    pseudonym TEXT NOT NULL,
    kind TEXT NOT NULL,
    connector TEXT NOT NULL,
    reference TEXT,            -- NULL when the source's id is a personal identity number
    first_at TEXT NOT NULL,    -- the source event's time (ISO, with offset)
    last_seen TEXT NOT NULL,   -- UTC ISO; pruned after the retention
    PRIMARY KEY (pseudonym, kind, connector)
);
CREATE INDEX IF NOT EXISTS refs_last_seen ON refs (last_seen);
"""


@dataclass(frozen=True)
class Reference:
    pseudonym: str
    kind: str
    connector: str
    reference: str | None  # None: the source's id is a personal identity number, not kept
    first_at: str
    last_seen: datetime


class LookupMap:
    def __init__(self, path: Path | str, retention_days: int = 60) -> None:
        self.path = Path(path)
        self.retention = timedelta(days=retention_days)
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], tuple[str | None, str]] = {}
        self._last_prune: datetime | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Made 0600 before anything is written into it (and kept so, should the file exist already).
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        limit_page_cache(self._db)
        self._db.executescript(_SCHEMA)

    def remember(self, pseudonym: str, kind: str, connector: str, raw: str, at: datetime) -> None:
        """Note the reference; written at `flush()` (the agent flushes after each batch) or every 500."""
        if kind not in KINDS:
            return
        reference = None if contains_personal_number(raw) else raw
        with self._lock:
            self._pending.setdefault((pseudonym, kind, connector), (reference, at.isoformat()))
            full = len(self._pending) >= FLUSH_EVERY
        if full:
            self.flush()

    def flush(self, now: datetime | None = None) -> int:
        now = now or datetime.now(timezone.utc)
        with self._lock:
            pending, self._pending = self._pending, {}
            try:
                if pending:
                    seen = now.isoformat()
                    with self._db:  # one transaction
                        self._db.executemany(
                            "INSERT INTO refs (pseudonym, kind, connector, reference, first_at, last_seen) VALUES (?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (pseudonym, kind, connector) DO UPDATE SET last_seen = excluded.last_seen",
                            [(p, k, c, ref, at, seen) for (p, k, c), (ref, at) in pending.items()],
                        )
                if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
                    self._prune(now)
            except sqlite3.Error as exc:  # a lookup aid: its trouble never stops collecting
                log.warning("lookup map %s not written (%s); %d references not kept", self.path, type(exc).__name__, len(pending))
                return 0
        return len(pending)

    def _prune(self, now: datetime) -> int:
        self._last_prune = now
        with self._db:
            return self._db.execute("DELETE FROM refs WHERE last_seen < ?", ((now - self.retention).isoformat(),)).rowcount

    def lookup(self, pseudonym: str, now: datetime | None = None) -> list[Reference]:
        """The references of a pseudonym seen within the retention (pruning what is older first)."""
        now = now or datetime.now(timezone.utc)
        self.flush(now)
        with self._lock:
            self._prune(now)
            rows = self._db.execute(
                "SELECT pseudonym, kind, connector, reference, first_at, last_seen FROM refs WHERE pseudonym = ? ORDER BY kind, connector",
                (pseudonym.strip(),),
            ).fetchall()
        return [Reference(p, k, c, ref, at, datetime.fromisoformat(seen)) for p, k, c, ref, at, seen in rows]

    def close(self) -> None:
        self.flush()
        self._db.close()


KIND_NAMES = {"case": "ärende", "call": "samtal"}


def answer(pseudonym: str, references: list[Reference], retention_days: int) -> str:
    """What `vardkoll collector lookup` prints, in Swedish (clinic staff read it)."""
    if not references:
        return f"{pseudonym}: okänd på den här insamlaren. Den har inte setts här de senaste {retention_days} dagarna (eller kommer från en annan insamlare).\n"
    lines = []
    for ref in references:
        what = KIND_NAMES.get(ref.kind, ref.kind)
        if ref.reference is None:
            lines.append(
                f"{pseudonym} ({what}, källa {ref.connector}): källsystemets id är ett personnummer och sparas inte. "
                f"Sök i källsystemet på tiden {ref.first_at}."
            )
        else:
            lines.append(f"{pseudonym} ({what}, källa {ref.connector}): {ref.reference} (första händelsen {ref.first_at})")
    return "\n".join(lines) + "\n"
