"""Store each distinct event exactly once and update the metric state in the same transaction.

Only after the commit may a caller acknowledge the events to their sender (SPEC 3.3): an event is
either committed (new, or already stored) or refused with a reason kept in the dead-letter table.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import msgspec
from sqlalchemy import select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.protocol import EventBase, EventRejected
from vardkoll.protocol.events import EVENT_DECODER

from ..storage.stamp_keys import epoch_us
from ..storage.tables import DeadLetter, StoredEvent, UnitActivity, UnitDayVersion
from ..units import UnitDirectory
from .bulk_sql import execute_rows
from ..storage.upsert import dialect_insert
from .entity_rows import EntityRows, merge_rows

_EVENT_COLUMNS = ("unit", "event_id", "type", "at_us", "device", "body", "received_at")
_EVENT_TAIL = "ON CONFLICT (unit, event_id) DO NOTHING RETURNING unit, event_id"


@dataclass(frozen=True)
class Source:
    """Where a batch came from and what it may speak for."""

    transport: str  # "mqtt" | "http"
    unit: str | None = None  # events must belong to this unit (None: any unit)
    device: str | None = None  # the sending device; stamped on events that name none


@dataclass
class IngestReport:
    committed: list[str] = field(default_factory=list)  # ids stored now or before: safe to delete at the sender
    rejected: list[tuple[str | None, str]] = field(default_factory=list)  # (event id if known, reason)
    new: int = 0
    duplicates: int = 0
    units_changed: set[str] = field(default_factory=set)
    # The unit of each rejected event, where it could be read, so its dead letter is visible to that unit.
    rejected_units: list[str | None] = field(default_factory=list)

    def reject(self, event_id: str | None, reason: str, unit: str | None) -> None:
        self.rejected.append((event_id, reason))
        self.rejected_units.append(unit)


DEADLOCK_RETRIES = 5


def _is_retryable(exc: DBAPIError) -> bool:
    """PostgreSQL's deadlock_detected and serialization_failure, and SQLite's "database is locked"."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001") or "database is locked" in str(exc.orig)


def _same_event(a: EventBase, b: EventBase) -> bool:
    return msgspec.structs.replace(a, device=None) == msgspec.structs.replace(b, device=None)


class IngestService:
    def __init__(self, sessions: sessionmaker[Session], units: UnitDirectory) -> None:
        self._sessions = sessions
        self._units = units

    def ingest(self, items: Iterable[Any], source: Source, received_at: datetime | None = None) -> IngestReport:
        """Commit a batch: `items` are events or EventRejected (from `protocol.parse_batch`)."""
        return self.ingest_many([(items, source)], received_at)[0]

    def ingest_many(self, batches: list[tuple[Iterable[Any], Source]], received_at: datetime | None = None) -> list[IngestReport]:
        """Commit several batches in one transaction (one report each, in order): the consumer groups
        the batches waiting in its queue, so a busy broker costs one commit per group, not per batch.
        An event that two batches of the group carry counts once, in the first; the second reports it
        committed as a duplicate (or refuses it, if its content differs)."""
        now = received_at or datetime.now(timezone.utc)
        reports = [IngestReport() for _ in batches]
        accepted: list[dict[tuple[str, str], EventBase]] = [{} for _ in batches]
        first_seen: dict[tuple[str, str], EventBase] = {}
        for (items, source), report, mine in zip(batches, reports, accepted):
            for item in items:
                event = self._admit(item, source, report)
                if event is None:
                    continue
                key = (event.unit, event.id)
                earlier = first_seen.get(key)
                if earlier is None:
                    first_seen[key] = mine[key] = event
                elif _same_event(earlier, event):
                    report.duplicates += 1
                    report.committed.append(event.id)
                else:
                    report.reject(event.id, "event id was already used by a different event of this unit", event.unit)
        # Unit settings are read before the write transaction: SQLite allows one writer at a time.
        configs = {unit: self._units.config(unit) for unit in {unit for unit, _ in first_seen}}
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                return self._commit(accepted, configs, reports, [source for _, source in batches], now)
            except DBAPIError as exc:
                # Concurrent writers of the same rows on PostgreSQL: one is chosen to fail; try again.
                if attempt == DEADLOCK_RETRIES or not _is_retryable(exc):
                    raise
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def _commit(
        self, accepted: list[dict[tuple[str, str], EventBase]], configs: dict[str, Any], base: list[IngestReport], sources: list[Source], now: datetime
    ) -> list[IngestReport]:
        reports = copy.deepcopy(base)
        every = {key: event for mine in accepted for key, event in mine.items()}
        ordered = sorted(every)
        # Each event's instant as epoch microseconds, once: the archive row and the stamp keys need it.
        epochs = {key: epoch_us(every[key].at) for key in ordered}
        with self._sessions.begin() as session:
            new_keys = self._insert_events(session, [every[key] for key in ordered], [epochs[key] for key in ordered], now)
            self._judge_repeats(session, [(event, report) for mine, report in zip(accepted, reports) for key, event in mine.items() if key not in new_keys])
            stored_now = [key for key in ordered if key in new_keys]
            rows = EntityRows(epochs)
            for key in stored_now:
                event = every[key]
                rows.add(event, configs[event.unit])
            merge_rows(session, rows)
            for mine, report in zip(accepted, reports):
                mine_now = sorted(key for key in mine if key in new_keys)
                report.new = len(mine_now)
                report.committed.extend(event_id for _, event_id in mine_now)
                report.units_changed = {unit for unit, _ in mine_now}
            self._touch_units(session, [every[k] for k in stored_now], now)
            for report, source in zip(reports, sources):
                self._dead_letters(session, report, source, now)
        return reports

    def refuse_payload(self, reason: str, source: Source, payload: bytes, received_at: datetime | None = None) -> None:
        """Record a payload that could not be read at all (never its content, only a digest and size)."""
        with self._sessions.begin() as session:
            session.add(
                DeadLetter(
                    received_at=received_at or datetime.now(timezone.utc), source=source.transport, unit=source.unit,
                    device=source.device, reason=reason, payload_sha256=hashlib.sha256(payload).hexdigest(), payload_bytes=len(payload),
                )
            )

    def _admit(self, item: Any, source: Source, report: IngestReport) -> EventBase | None:
        if isinstance(item, EventRejected):
            report.reject(None, item.reason, source.unit)
            return None
        event: EventBase = item
        if source.unit is not None and event.unit != source.unit:
            report.reject(event.id, f"event for unit {event.unit} sent by a device of unit {source.unit}", source.unit)
            return None
        if source.device is not None:
            if event.device is None:
                event = msgspec.structs.replace(event, device=source.device)
            elif event.device != source.device:
                report.reject(event.id, f"event names device {event.device} but came from device {source.device}", event.unit)
                return None
        if epoch_us(event.at) < 0:
            report.reject(event.id, "field 'at' is before 1970", event.unit)
            return None
        return event

    def _insert_events(self, session: Session, events: list[EventBase], epochs: list[int], now: datetime) -> set[tuple[str, str]]:
        encode = msgspec.json.encode
        rows = [
            {"unit": e.unit, "event_id": e.id, "type": e.__struct_config__.tag, "at_us": at_us, "device": e.device, "body": encode(e), "received_at": now}
            for e, at_us in zip(events, epochs)
        ]
        returned = execute_rows(session, StoredEvent.__table__, _EVENT_COLUMNS, rows, _EVENT_TAIL, returning=True)
        return {(unit, event_id) for unit, event_id in returned}

    def _judge_repeats(self, session: Session, repeats: list[tuple[EventBase, IngestReport]]) -> None:
        """Events whose id was stored before: the same event again, or a conflicting one."""
        if not repeats:
            return
        keys = sorted({(event.unit, event.id) for event, _ in repeats})
        stored = {}
        table = StoredEvent.__table__
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = select(table.c.unit, table.c.event_id, table.c.body).where(tuple_(table.c.unit, table.c.event_id).in_(chunk))
            stored.update({(u, i): body for u, i, body in session.execute(query)})
        for event, report in repeats:
            body = stored.get((event.unit, event.id))
            if body is not None and _same_event(EVENT_DECODER.decode(body), event):
                report.duplicates += 1
                report.committed.append(event.id)
            else:
                report.reject(event.id, "event id was already used by a different event of this unit", event.unit)

    def _touch_units(self, session: Session, events: list[EventBase], now: datetime) -> None:
        latest_at: dict[str, datetime] = {}
        for event in events:
            if event.unit not in latest_at or event.at > latest_at[event.unit]:
                latest_at[event.unit] = event.at
        latest = {unit: epoch_us(at) for unit, at in latest_at.items()}
        if not latest:
            return
        table = UnitActivity.__table__
        stmt = dialect_insert(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["unit"],
            set_={
                "version": table.c.version + 1,
                "last_event_at_us": _greatest(table.c.last_event_at_us, stmt.excluded.last_event_at_us),
                "last_received_at": stmt.excluded.last_received_at,
            },
        )
        session.execute(stmt, [{"unit": unit, "version": 1, "last_event_at_us": at, "last_received_at": now} for unit, at in sorted(latest.items())])
        self._touch_days(session, events, sorted(latest))

    @staticmethod
    def _touch_days(session: Session, events: list[EventBase], units: list[str]) -> None:
        """Record, per unit and UTC date of the stored events, the version this commit gave the unit
        (read back under the row lock the upsert above holds, so it is this commit's own)."""
        versions = dict(session.execute(select(UnitActivity.unit, UnitActivity.version).where(UnitActivity.unit.in_(units))).all())
        days = sorted({(event.unit, event.at.astimezone(timezone.utc).date()) for event in events})
        table = UnitDayVersion.__table__
        stmt = dialect_insert(session, table)
        stmt = stmt.on_conflict_do_update(index_elements=["unit", "day"], set_={"version": _greatest(table.c.version, stmt.excluded.version)})
        session.execute(stmt, [{"unit": unit, "day": day, "version": versions[unit]} for unit, day in days])

    def _dead_letters(self, session: Session, report: IngestReport, source: Source, now: datetime) -> None:
        for (event_id, reason), unit in zip(report.rejected, report.rejected_units):
            session.add(DeadLetter(received_at=now, source=source.transport, unit=unit, device=source.device, event_id=event_id, reason=reason))


def _greatest(old: Any, new: Any) -> Any:
    from sqlalchemy import case

    return case((old.is_(None), new), (new > old, new), else_=old)
