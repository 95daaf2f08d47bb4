"""Store each distinct event exactly once and update the metric state in the same transaction.

Only after the commit may a caller acknowledge the events to their sender (SPEC 3.3): an event is
either committed (new, or already stored) or refused with a reason kept in the dead-letter table.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import and_, case, select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.protocol import EventBase
from vardkoll.protocol.events import EVENT_DECODER
from vardkoll.protocol.sameness import same_event

from ..monitoring import count_ingest, count_payload_refused, time_commit
from ..storage.tables import DeadLetter, StoredEvent, UnitActivity, UnitDayVersion
from ..storage.upsert import dialect_insert
from ..registry.directory import UnitDirectory
from .bulk_sql import execute_rows, insert_counted
from .day_marks import mark_changed_days
from .entity_rows import merge_rows
from ..storage.faults import error_kind, is_database_error, is_transient
from .prepare import DEFAULT_CLOCK_SKEW, ARCHIVE_COLUMNS, METRIC_BITS, ActivityByUnit, IngestReport, Key, PreparedIngest, Source, new_rows, prepare

log = logging.getLogger("vardkoll.ingest")

__all__ = ["DEADLOCK_RETRIES", "IngestReport", "IngestService", "PreparedIngest", "Source"]

_EPOCH_DATE = datetime(1970, 1, 1, tzinfo=timezone.utc).date()
_ARCHIVE_TAIL = "ON CONFLICT (unit, event_id) DO NOTHING"
DEADLOCK_RETRIES = 5


def _is_retryable(exc: DBAPIError) -> bool:
    """PostgreSQL's deadlock_detected and serialization_failure, and SQLite's "database is locked"."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001") or "database is locked" in str(exc.orig)


class IngestService:
    def __init__(self, sessions: sessionmaker[Session], units: UnitDirectory, clock_skew: timedelta = DEFAULT_CLOCK_SKEW) -> None:
        self._sessions = sessions
        self._units = units
        self._clock_skew = clock_skew

    def ingest(self, items: Iterable[Any], source: Source, received_at: datetime | None = None) -> IngestReport:
        """Commit a batch: `items` are events or EventRejected (from `protocol.parse_batch`)."""
        return self.ingest_many([(items, source)], received_at)[0]

    def ingest_many(self, batches: list[tuple[Iterable[Any], Source]], received_at: datetime | None = None) -> list[IngestReport]:
        """Commit several batches in one transaction (one report each, in order): the consumer groups
        the batches waiting in its queue, so a busy broker costs one commit per group, not per batch.

        When the commit fails with an error that is not transient (a value the database refuses, a
        fault of ours), the group is split and each half committed on its own, down to the single event
        at fault, which is rejected with a reason and kept as a dead letter: one bad event never fails
        another event or another device's batch. Transient errors are raised for the caller to retry."""
        listed = [(list(items), source) for items, source in batches]
        received_at = received_at or datetime.now(timezone.utc)
        try:
            return self.commit(self.prepare(listed, received_at))
        except Exception as exc:  # noqa: BLE001 - sorted into transient (raised) and poison (isolated) below
            if is_transient(exc):
                raise
            return self._isolate(listed, received_at, exc)

    def _isolate(self, batches: list[tuple[list[Any], Source]], received_at: datetime, exc: Exception) -> list[IngestReport]:
        if len(batches) > 1:
            middle = len(batches) // 2
            return self.ingest_many(batches[:middle], received_at) + self.ingest_many(batches[middle:], received_at)
        items, source = batches[0]
        if len(items) > 1:
            middle = len(items) // 2
            halves = self.ingest_many([(items[:middle], source), (items[middle:], source)], received_at)
            return [_merged(halves)]
        report = IngestReport()
        if items:
            event = items[0]
            event_id, unit = getattr(event, "id", None), getattr(event, "unit", source.unit)
            by_database = is_database_error(exc)
            log.error("event refused by the database or by ingest (%s); kept as a dead letter", error_kind(exc), exc_info=not by_database)
            refused = "the database refused the event" if by_database else "the event could not be stored"
            report.reject(
                event_id,
                f"{refused} ({error_kind(exc)}); it was set aside, the rest of its batch was stored",
                unit if isinstance(unit, str) and len(unit) <= 40 else None,
            )
            try:
                with self._sessions.begin() as session:
                    self._dead_letters(session, report, source, received_at)
            except Exception:  # noqa: BLE001 - the sender still learns the reason from its acknowledgement
                log.error("could not keep the dead letter of a refused event")
        return [report]

    def prepare(self, batches: list[tuple[Iterable[Any], Source]], received_at: datetime | None = None) -> PreparedIngest:
        """The work that needs no database (see `prepare`); unit settings are read here, before the
        write transaction, as SQLite allows one writer at a time."""
        return prepare(batches, self._units, received_at or datetime.now(timezone.utc), self._clock_skew)

    def commit(self, prepared: PreparedIngest) -> list[IngestReport]:
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                with time_commit():
                    reports = self._commit(prepared)
                for report, source in zip(reports, prepared.sources):
                    count_ingest(source.transport, report.new, report.duplicates, (reason for _, reason in report.rejected))
                return reports
            except DBAPIError as exc:
                # Concurrent writers of the same rows on PostgreSQL: one is chosen to fail; try again.
                if attempt == DEADLOCK_RETRIES or not _is_retryable(exc):
                    raise
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def _commit(self, prepared: PreparedIngest) -> list[IngestReport]:
        reports = copy.deepcopy(prepared.reports)
        now = prepared.received_at
        with self._sessions.begin() as session:
            new_keys = self._insert_events(session, prepared.archive_rows)
            if new_keys is None:
                # The usual case, every event new: the rows built in advance are the ones to merge.
                accepted = prepared.accepted
                rows, activity = prepared.entity_rows, prepared.activity
            else:
                # Some were stored before. They must not be merged again (a conflicting one would bring
                # its stamps), so the rows are built again for the new ones only.
                accepted = [{key: event for key, event in mine.items() if key in new_keys} for mine in prepared.accepted]
                self._judge_repeats(
                    session, [(event, report) for mine, report in zip(prepared.accepted, reports) for key, event in mine.items() if key not in new_keys]
                )
                stored_now = [key for key in prepared.ordered if key in new_keys]
                _, rows, activity = new_rows(stored_now, prepared.events, prepared.epochs, prepared.configs, None)
            # The units' rows first: their lock orders this commit after any other of the same units,
            # and their new versions mark the days whose figure parts the merge changes.
            versions = self._touch_units(session, activity, now)
            mark_changed_days(session, rows, versions)
            merge_rows(session, rows, versions)
            for mine, report in zip(accepted, reports):
                report.new = len(mine)
                report.committed.extend(event_id for _, event_id in mine)
                report.units_changed = {unit for unit, _ in mine}
            for report, source in zip(reports, prepared.sources):
                self._dead_letters(session, report, source, now)
        return reports

    def refuse_payload(self, reason: str, source: Source, payload: bytes, received_at: datetime | None = None) -> None:
        """Record a payload that could not be read at all (never its content, only a digest and size)."""
        count_payload_refused(source.transport, reason)
        with self._sessions.begin() as session:
            session.add(
                DeadLetter(
                    received_at=received_at or datetime.now(timezone.utc),
                    source=source.transport,
                    unit=source.unit,
                    device=source.device,
                    reason=reason,
                    payload_sha256=hashlib.sha256(payload).hexdigest(),
                    payload_bytes=len(payload),
                )
            )

    def _insert_events(self, session: Session, rows: list[tuple[Any, ...]]) -> set[Key] | None:
        """Insert the archive rows; the keys of those stored now, or None when that is every one of
        them (the usual case, answered without building a set)."""
        table = StoredEvent.__table__
        if session.connection().dialect.name != "sqlite":
            returned = execute_rows(session, table, ARCHIVE_COLUMNS, rows, _ARCHIVE_TAIL + " RETURNING unit, event_id", returning=True)
            return None if len(returned) == len(rows) else set(returned)
        # SQLite: with RETURNING, sqlite3 steps once per row, and each step lets go of the GIL and
        # waits to get it back (measured: a fifth of the consumer's throughput). The counts say
        # whether every row was new; only when not are the new ones read back. SQLite gives a new row
        # the largest rowid + 1 and has one writer at a time, so the rows one statement inserted are
        # the last `inserted` rowids up to its lastrowid.
        counts = insert_counted(session, table, ARCHIVE_COLUMNS, rows, _ARCHIVE_TAIL)
        if sum(count.inserted for count in counts) == len(rows):
            return None
        new_keys: set[Key] = set()
        for count in counts:
            if count.inserted and count.last_rowid is not None:
                span = table.c.seq.between(count.last_rowid - count.inserted + 1, count.last_rowid)
                new_keys.update((unit, event_id) for unit, event_id in session.execute(select(table.c.unit, table.c.event_id).where(span)))
        return new_keys

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
            if body is not None and same_event(EVENT_DECODER.decode(body), event):
                report.duplicates += 1
                report.committed.append(event.id)
            else:
                report.reject(event.id, "event id was already used by a different event of this unit", event.unit)

    def _touch_units(self, session: Session, activity: ActivityByUnit, now: datetime) -> dict[str, int]:
        """Bump the version of every unit with new events; return the versions this commit gave them."""
        latest = activity.latest
        if not latest:
            return {}
        table = UnitActivity.__table__
        stmt = dialect_insert(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["unit"],
            set_={
                "version": table.c.version + 1,
                "row_versions": table.c.row_versions + 1,  # this commit sets its rows' versions (`merge_rows`)
                "last_event_at_us": _greatest(table.c.last_event_at_us, stmt.excluded.last_event_at_us),
                "last_received_at": stmt.excluded.last_received_at,
            },
        )
        session.execute(
            stmt, [{"unit": unit, "version": 1, "row_versions": 1, "last_event_at_us": at, "last_received_at": now} for unit, at in sorted(latest.items())]
        )
        days = sorted((unit, _EPOCH_DATE + timedelta(days=day), metrics) for (unit, day), metrics in activity.days.items())
        return self._touch_days(session, days, sorted(latest))

    @staticmethod
    def _touch_days(session: Session, days: list[tuple[str, date, int]], units: list[str]) -> dict[str, int]:
        """Record, per unit and UTC date of the stored events, the version this commit gave the unit
        (read back under the row lock the upsert above holds, so it is this commit's own), for the day
        and for each metric (`METRIC_BITS`) of its events (see `UnitDayVersion`)."""
        versions = dict(session.execute(select(UnitActivity.unit, UnitActivity.version).where(UnitActivity.unit.in_(units))).all())
        table = UnitDayVersion.__table__
        stmt = dialect_insert(session, table)
        # A row a previous release wrote or bumped since the metric columns were: each metric starts
        # from `version`, which covered every metric there.
        exact = and_(table.c.metrics_version.is_not(None), table.c.metrics_version == table.c.version)
        newest = _greatest(table.c.version, stmt.excluded.version)
        set_: dict[str, Any] = {"version": newest, "metrics_version": newest}
        for metric in METRIC_BITS:
            column = table.c[f"{metric}_version"]
            set_[column.name] = _greatest(case((exact, column), else_=table.c.version), stmt.excluded[column.name])
        stmt = stmt.on_conflict_do_update(index_elements=["unit", "day"], set_=set_)
        rows = [
            {
                "unit": unit,
                "day": day,
                "version": versions[unit],
                "metrics_version": versions[unit],
                **{f"{metric}_version": versions[unit] if metrics & bit else None for metric, bit in METRIC_BITS.items()},
            }
            for unit, day, metrics in days
        ]
        session.execute(stmt, rows)
        return versions

    def _dead_letters(self, session: Session, report: IngestReport, source: Source, now: datetime) -> None:
        for (event_id, reason), unit in zip(report.rejected, report.rejected_units):
            session.add(DeadLetter(received_at=now, source=source.transport, unit=unit, device=source.device, event_id=event_id, reason=reason))


def _greatest(old: Any, new: Any) -> Any:
    return case((old.is_(None), new), (new > old, new), else_=old)


def _merged(reports: list[IngestReport]) -> IngestReport:
    """The report of a batch that was committed in parts."""
    whole = IngestReport()
    for part in reports:
        whole.committed.extend(part.committed)
        whole.rejected.extend(part.rejected)
        whole.rejected_units.extend(part.rejected_units)
        whole.new += part.new
        whole.duplicates += part.duplicates
        whole.units_changed |= part.units_changed
    return whole
