"""The durable outbox: every event waits here, on disk, until the server says it is committed.

Guarantees (docs/collector.md, "The outbox"):
- Only valid events get in. Each one passes `protocol.validate_event`, which runs the personal-number
  guard first; a refused event is counted under its reason (safe to show: it never quotes a value) and
  never stored. What is stored is the typed event encoded again, so fields the protocol does not know
  (where a careless connector might have left a phone number) are dropped.
- Power loss: SQLite in WAL mode with synchronous=FULL; one transaction per `add`, so after a crash an
  `add` is either wholly there or wholly absent. Counters and connector checkpoints live in the same
  database and change in the same transactions, so they never disagree with the rows.
- Idempotent: an event id already waiting is not stored twice.
- Deleted only by `acknowledge`, with the ids the server's committed acknowledgement lists (committed,
  or rejected for good). A PUBACK never reaches this module.
- Held: events stamped by this device's clock while that clock was not trustworthy (collector/clock.py)
  are stored held, with what is needed to correct their time; they are not published until
  `release_held` corrects and releases them once the clock is ok.
- Bounded: at most `max_events` events and `max_bytes` bytes. Past that, the drop policy decides
  (`drop_oldest`, the default, or `drop_newest`) and every dropped event is counted in `dropped`, which
  is persisted and reported in the heartbeat.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Literal

import msgspec
import orjson

from vardkoll.protocol.validation import EventRejected, validate_event

from .clock import HoldStamp
from .sqlite_memory import limit_page_cache

DropPolicy = Literal["drop_oldest", "drop_newest"]
DEFAULT_MAX_EVENTS = 2_000_000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_MAX_REASON_CHARS = 300
_MAX_REASON_ROWS = 200  # distinct refusal reasons kept; the rest are counted under "other"
_CHUNK = 500
PAGE_SIZE = 1024  # bytes per SQLite page for a new outbox (see Outbox.__init__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    at_epoch REAL NOT NULL,
    body BLOB NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,  -- 1: stamped by an untrustworthy device clock, not to be published yet
    hold_boot TEXT,  -- the boot id and clock offset when it was stamped (collector/clock.py)
    hold_offset REAL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refusals (side TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (side, reason));
CREATE TABLE IF NOT EXISTS checkpoints (source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (source, key));
"""
_COUNTERS = ("events", "bytes", "added", "duplicates", "dropped", "refused", "committed", "rejected", "released")


@dataclass(frozen=True)
class Checkpoint:
    """A connector's progress (e.g. a file read to the end), stored in the same transaction as its events."""

    source: str
    key: str
    value: str


@dataclass
class AddReport:
    added: int = 0
    duplicates: int = 0
    dropped: int = 0
    refused: list[str] = field(default_factory=list)  # one reason per refused event


@dataclass
class ReleaseReport:
    released: int = 0  # corrected by the clock's step and released for publishing
    stranded: int = 0  # held from an earlier boot: cannot be corrected, stay held
    corrections_s: list[float] = field(default_factory=list)  # distinct corrections applied


@dataclass
class AckReport:
    committed: int = 0  # deleted because the server stored them
    rejected: int = 0  # deleted because the server will never accept them
    unknown: int = 0  # listed, but not (or no longer) waiting here


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    event_id: str
    body: bytes


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_at: datetime | None  # event time of the oldest undelivered event
    added: int
    duplicates: int
    dropped: int
    refused: int
    committed: int
    rejected: int
    refused_reasons: dict[str, int]
    rejected_reasons: dict[str, int]
    held: int = 0  # waiting for a trustworthy clock (collector/clock.py)
    released: int = 0  # were held, then corrected and released

    def as_heartbeat(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "depth": self.depth,
            "bytes": self.bytes,
            "oldest_at": self.oldest_at.isoformat() if self.oldest_at else None,
            "added": self.added,
            "dropped": self.dropped,
            "refused": self.refused,
            "committed": self.committed,
            "rejected": self.rejected,
        }

    def as_report(self) -> dict[str, Any]:
        """Every counter, for `vardkoll collector outbox-stats` (docs/collector.md lists them)."""
        return {
            **self.as_heartbeat(),
            "duplicates": self.duplicates,
            "released": self.released,
            "refused_reasons": self.refused_reasons,
            "rejected_reasons": self.rejected_reasons,
        }


class OutboxError(RuntimeError):
    pass


class Outbox:
    def __init__(
        self,
        path: Path | str,
        unit: str | None = None,
        device: str | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        drop_policy: DropPolicy = "drop_oldest",
    ) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("max_events and max_bytes must be at least 1")
        if drop_policy not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"unknown drop policy {drop_policy!r}; expected drop_oldest or drop_newest")
        self.path = Path(path)
        self.unit, self.device = unit, device
        self.max_events, self.max_bytes, self.drop_policy = max_events, max_bytes, drop_policy
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        # SD cards: a transaction writes each page it touches to the WAL, so small pages write less per
        # event (one event per transaction: 16 KiB instead of 40, bench/sd_writes.py). Takes effect
        # only when the file is created; an existing outbox keeps its page size.
        self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"{self.path}: SQLite refused WAL mode (got {mode}); put the outbox on a local file system")
        self._db.execute("PRAGMA synchronous=FULL")
        limit_page_cache(self._db)
        self._db.executescript(_SCHEMA)  # idempotent, each statement atomic
        self._migrate()
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO counters (name, value) VALUES (?, 0)", [(name,) for name in _COUNTERS])

    # -- writing --------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Outboxes written before held events existed get the columns (SQLite adds them in place)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        for column, kind in (("held", "INTEGER NOT NULL DEFAULT 0"), ("hold_boot", "TEXT"), ("hold_offset", "REAL")):
            if column not in columns:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {column} {kind}")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_held ON outbox (held) WHERE held = 1")

    def add(
        self, events: Iterable[dict[str, Any]], checkpoint: Checkpoint | None = None, *, held_ids: Iterable[str] = (), hold: HoldStamp | None = None
    ) -> AddReport:
        """Validate and store events (and a connector checkpoint) in one transaction. Events whose id is
        in `held_ids` are stored held with `hold` (their time came from an untrustworthy device clock)."""
        held = set(held_ids) if hold is not None else set()
        report = AddReport()
        prepared: list[tuple[str, float, bytes]] = []
        refusals: dict[str, int] = {}
        for obj in events:
            try:
                prepared.append(self._prepare(obj))
            except EventRejected as exc:
                reason = exc.reason[:_MAX_REASON_CHARS]
                report.refused.append(reason)
                refusals[reason] = refusals.get(reason, 0) + 1
        with self._lock, self._transaction():
            counts = self._counters()
            for event_id, at_epoch, body in prepared:
                if self.drop_policy == "drop_newest" and (counts["events"] + 1 > self.max_events or counts["bytes"] + len(body) > self.max_bytes):
                    if self._db.execute("SELECT 1 FROM outbox WHERE event_id = ?", (event_id,)).fetchone():
                        report.duplicates += 1
                    else:
                        report.dropped += 1
                    continue
                if event_id in held:
                    assert hold is not None
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO outbox (event_id, at_epoch, body, held, hold_boot, hold_offset) VALUES (?, ?, ?, 1, ?, ?)",
                        (event_id, at_epoch, body, hold.boot_id, hold.offset_s),
                    )
                else:
                    cursor = self._db.execute("INSERT OR IGNORE INTO outbox (event_id, at_epoch, body) VALUES (?, ?, ?)", (event_id, at_epoch, body))
                if cursor.rowcount:
                    report.added += 1
                    counts["events"] += 1
                    counts["bytes"] += len(body)
                else:
                    report.duplicates += 1
            if self.drop_policy == "drop_oldest":
                report.dropped += self._drop_oldest(counts)
            counts["added"] += report.added
            counts["duplicates"] += report.duplicates
            counts["dropped"] += report.dropped
            counts["refused"] += len(report.refused)
            self._save_counters(counts)
            self._count_reasons("refused", refusals)
            if checkpoint is not None:
                self._db.execute(
                    "INSERT INTO checkpoints (source, key, value) VALUES (?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET value = excluded.value",
                    (checkpoint.source, checkpoint.key, checkpoint.value),
                )
        return report

    def _prepare(self, obj: dict[str, Any]) -> tuple[str, float, bytes]:
        if isinstance(obj, dict) and self.device is not None and obj.get("device") is None:
            obj = {**obj, "device": self.device}
        event = validate_event(obj)  # the personal-number guard runs first, inside
        if self.unit is not None and event.unit != self.unit:
            raise EventRejected(f"event is for unit {event.unit} but this device serves unit {self.unit}")
        if self.device is not None and event.device != self.device:
            raise EventRejected(f"event names device {event.device} but this device is {self.device}")
        return event.id, event.at.timestamp(), msgspec.json.encode(event)

    def _drop_oldest(self, counts: dict[str, int]) -> int:
        over_events = counts["events"] - self.max_events
        over_bytes = counts["bytes"] - self.max_bytes
        if over_events <= 0 and over_bytes <= 0:
            return 0
        dropped = freed = 0
        last_seq = None
        for seq, size in self._db.execute("SELECT seq, length(body) FROM outbox ORDER BY seq"):
            if dropped >= over_events and freed >= over_bytes:
                break
            dropped, freed, last_seq = dropped + 1, freed + size, seq
        if last_seq is not None:
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (last_seq,))
        counts["events"] -= dropped
        counts["bytes"] -= freed
        return dropped

    def release_held(self, boot_id: str, offset_s: float) -> ReleaseReport:
        """The clock is ok again: correct each held event of this boot by how far the clock was stepped
        since it was stamped, and release it (at the end of the queue, so this connection sends it).
        Held events of an earlier boot cannot be corrected and stay held."""
        report = ReleaseReport()
        with self._lock, self._transaction():
            counts = self._counters()
            rows = self._db.execute("SELECT seq, event_id, body, hold_boot, hold_offset FROM outbox WHERE held = 1 ORDER BY seq").fetchall()
            corrections: set[float] = set()
            for seq, event_id, body, hold_boot, hold_offset in rows:
                if hold_boot != boot_id or hold_offset is None:
                    report.stranded += 1
                    continue
                correction = round(offset_s - hold_offset, 3)
                event = orjson.loads(body)
                at = datetime.fromisoformat(event["at"])
                event["at"] = (at + timedelta(seconds=correction)).astimezone(at.tzinfo).isoformat()
                new_body = orjson.dumps(event)
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                self._db.execute(
                    "INSERT INTO outbox (event_id, at_epoch, body) VALUES (?, ?, ?)",
                    (event_id, datetime.fromisoformat(event["at"]).timestamp(), new_body),
                )
                counts["bytes"] += len(new_body) - len(body)
                report.released += 1
                corrections.add(correction)
            counts["released"] += report.released
            self._save_counters(counts)
        report.corrections_s = sorted(corrections)
        return report

    def held_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox WHERE held = 1").fetchone()[0]

    def acknowledge(self, committed: Iterable[str], rejected: Iterable[tuple[str | None, str]] = ()) -> AckReport:
        """Delete what the server's committed acknowledgement lists; nothing else ever deletes an event."""
        report = AckReport()
        committed = list(dict.fromkeys(committed))
        rejected = list(rejected)
        with self._lock, self._lazy_sync(), self._transaction():
            counts = self._counters()
            removed = self._delete(committed, counts)
            report.committed = removed
            report.unknown += len(committed) - removed
            reasons: dict[str, int] = {}
            rejected_ids = list(dict.fromkeys(event_id for event_id, _ in rejected if event_id))
            report.rejected = self._delete(rejected_ids, counts)
            report.unknown += len(rejected_ids) - report.rejected
            for _, reason in rejected:
                reason = str(reason)[:_MAX_REASON_CHARS]
                reasons[reason] = reasons.get(reason, 0) + 1
            counts["committed"] += report.committed
            counts["rejected"] += report.rejected
            self._save_counters(counts)
            self._count_reasons("rejected", reasons)
        return report

    def _delete(self, event_ids: list[str], counts: dict[str, int]) -> int:
        removed = 0
        for start in range(0, len(event_ids), _CHUNK):
            chunk = event_ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            number, size = self._db.execute(f"SELECT count(*), coalesce(sum(length(body)), 0) FROM outbox WHERE event_id IN ({marks})", chunk).fetchone()
            self._db.execute(f"DELETE FROM outbox WHERE event_id IN ({marks})", chunk)
            removed += number
            counts["events"] -= number
            counts["bytes"] -= size
        return removed

    # -- reading --------------------------------------------------------------------------------------

    def batch_after(self, seq: int, max_events: int, max_bytes: int | None = None, include_held: bool = False) -> list[OutboxRow]:
        """The oldest waiting events with a sequence number above `seq` (at least one if any); held
        events only when asked (never for publishing)."""
        held = "" if include_held else " AND held = 0"
        with self._lock:
            rows = self._db.execute(f"SELECT seq, event_id, body FROM outbox WHERE seq > ?{held} ORDER BY seq LIMIT ?", (seq, max_events)).fetchall()
        return _within_bytes([OutboxRow(*row) for row in rows], max_bytes)

    def rows(self, event_ids: Iterable[str]) -> list[OutboxRow]:
        """Those of the given events that still wait, oldest first."""
        ids = list(event_ids)
        found: list[OutboxRow] = []
        with self._lock:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found += [OutboxRow(*row) for row in self._db.execute(f"SELECT seq, event_id, body FROM outbox WHERE event_id IN ({marks})", chunk)]
        return sorted(found, key=lambda row: row.seq)

    def checkpoint(self, source: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM checkpoints WHERE source = ? AND key = ?", (source, key)).fetchone()
        return row[0] if row else None

    def stats(self) -> OutboxStats:
        with self._lock:
            counts = self._counters()
            oldest = self._db.execute("SELECT min(at_epoch) FROM outbox").fetchone()[0]
            held = self._db.execute("SELECT count(*) FROM outbox WHERE held = 1").fetchone()[0]
            reasons = {"refused": {}, "rejected": {}}  # type: dict[str, dict[str, int]]
            for side, reason, count in self._db.execute("SELECT side, reason, count FROM refusals"):
                reasons[side][reason] = count
        return OutboxStats(
            depth=counts["events"],
            bytes=counts["bytes"],
            oldest_at=datetime.fromtimestamp(oldest, timezone.utc) if oldest is not None else None,
            added=counts["added"],
            duplicates=counts["duplicates"],
            dropped=counts["dropped"],
            refused=counts["refused"],
            committed=counts["committed"],
            rejected=counts["rejected"],
            refused_reasons=reasons["refused"],
            rejected_reasons=reasons["rejected"],
            held=held,
            released=counts["released"],
        )

    def __len__(self) -> int:
        return self.stats().depth

    def dump_jsonl(self, stream: IO[bytes]) -> int:
        """Write every waiting event as one JSON line, oldest first (for `replay`, audits, tests)."""
        written = 0
        for row in self._iter_rows():
            stream.write(row.body + b"\n")
            written += 1
        return written

    def _iter_rows(self) -> Iterator[OutboxRow]:
        seq = 0
        while True:
            rows = self.batch_after(seq, 1000, include_held=True)
            if not rows:
                return
            yield from rows
            seq = rows[-1].seq

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- details --------------------------------------------------------------------------------------

    @contextmanager
    def _lazy_sync(self) -> Iterator[None]:
        """A deletion need not reach the disk at once: lost in a power cut, the events are sent again
        and the server counts them once. Without the fsync, an acknowledgement costs the SD card no
        flush of its own (the next `add` or checkpoint syncs the WAL)."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)

    def _counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def _save_counters(self, counts: dict[str, int]) -> None:
        self._db.executemany("UPDATE counters SET value = ? WHERE name = ?", [(value, name) for name, value in counts.items()])

    def _count_reasons(self, side: str, reasons: dict[str, int]) -> None:
        for reason, count in reasons.items():
            known = self._db.execute("SELECT 1 FROM refusals WHERE side = ? AND reason = ?", (side, reason)).fetchone()
            if not known and self._db.execute("SELECT count(*) FROM refusals WHERE side = ?", (side,)).fetchone()[0] >= _MAX_REASON_ROWS:
                reason = "other"
            self._db.execute(
                "INSERT INTO refusals (side, reason, count) VALUES (?, ?, ?) ON CONFLICT (side, reason) DO UPDATE SET count = count + excluded.count",
                (side, reason, count),
            )


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _within_bytes(rows: list[OutboxRow], max_bytes: int | None) -> list[OutboxRow]:
    if max_bytes is None:
        return rows
    kept, size = [], 0
    for row in rows:
        if kept and size + len(row.body) + 1 > max_bytes:
            break
        kept.append(row)
        size += len(row.body) + 1
    return kept
