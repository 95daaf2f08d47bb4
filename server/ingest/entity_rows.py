"""From a batch of new events to the rows that keep metric state in the database.

The pure ledgers of `server.metrics` fold the batch (earliest event of each kind per call and case);
the rows they give are then merged into the stored ones with "earliest wins" upserts, which commute,
so batches may be committed in any order and by several processes at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy import Table, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vardkoll.protocol import EventBase, ListingSnapshot, VisitCompleted
from vardkoll.server.metrics.assessment import CaseLedger
from vardkoll.server.metrics.config import UnitConfig
from vardkoll.server.metrics.stamps import Stamp
from vardkoll.server.metrics.telephone import CallLedger

from ..storage.stamp_keys import epoch_us, stamp_key
from ..storage.tables import CallRow, CaseRow, DoctorVisitRow, SnapshotRow

CALL_STAMPS = ("offered", "answered", "callback_booked", "callback_made", "callback_reached", "abandoned", "rejected")
# A stamp column and the columns whose values belong to the event that stamp came from.
CALL_FOLLOWERS = {"offered": ("offered_day",), "rejected": ("rejected_day",)}
CASE_STAMPS = ("contact", "assessed", "excluded", "cancelled")
CASE_FOLLOWERS = {"contact": ("contact_day", "listed"), "assessed": ("assessed_day", "profession")}


def _key(stamp: Stamp | None) -> str | None:
    return None if stamp is None else stamp_key(stamp.at, stamp.event_id)


class EntityRows:
    """The rows one batch of new events contributes, per table."""

    def __init__(self) -> None:
        self._calls: dict[str, CallLedger] = {}
        self._cases: dict[str, CaseLedger] = {}
        self.snapshots: list[dict[str, Any]] = []
        self.visits: list[dict[str, Any]] = []

    def add(self, event: EventBase, config: UnitConfig) -> None:
        stamp = Stamp(event.at, event.id, event.at.astimezone(config.tz).date())
        if isinstance(event, ListingSnapshot):
            self.snapshots.append({"unit": event.unit, "stamp": _key(stamp), "body": msgspec.json.encode(event)})
        elif isinstance(event, VisitCompleted):
            if event.profession == "doctor" and event.listed:
                self.visits.append(
                    {"unit": event.unit, "event_id": event.id, "at_us": epoch_us(event.at), "day": stamp.day,
                     "patient": event.patient, "practitioner": event.practitioner, "fixed_doctor": event.fixed_doctor}
                )
        elif type(event) in CaseLedger.event_classes:
            self._cases.setdefault(event.unit, CaseLedger()).apply(event, stamp)
        else:
            self._calls.setdefault(event.unit, CallLedger()).apply(event, stamp)

    def calls(self) -> list[dict[str, Any]]:
        rows = []
        for unit, ledger in sorted(self._calls.items()):
            for call, state in sorted(ledger.calls.items()):
                row = {"unit": unit, "call": call, **{name: _key(getattr(state, name)) for name in CALL_STAMPS}}
                row["offered_day"] = state.offered.day if state.offered else None
                row["rejected_day"] = state.rejected.day if state.rejected else None
                rows.append(row)
        return rows

    def cases(self) -> list[dict[str, Any]]:
        rows = []
        for unit, ledger in sorted(self._cases.items()):
            for case_id, state in sorted(ledger.cases.items()):
                row = {"unit": unit, "case": case_id, **{name: _key(getattr(state, name)) for name in CASE_STAMPS}}
                row["contact_day"] = state.contact.day if state.contact else None
                row["listed"] = state.listed if state.contact else None
                row["assessed_day"] = state.assessed.day if state.assessed else None
                row["profession"] = state.profession if state.assessed else None
                rows.append(row)
        return rows


def _insert(session: Session, table: Table):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _earliest_wins(table: Table, stmt: Any, stamps: Iterable[str], followers: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    for name in stamps:
        old, new = table.c[name], stmt.excluded[name]
        wins = (new.is_not(None)) & (old.is_(None) | (new < old))
        updates[name] = case((wins, new), else_=old)
        for follower in followers.get(name, ()):
            updates[follower] = case((wins, stmt.excluded[follower]), else_=table.c[follower])
    return updates


def merge_rows(session: Session, rows: EntityRows) -> None:
    """Upsert every row of the batch, keeping the earliest stamp of each kind."""
    calls = rows.calls()
    if calls:
        stmt = _insert(session, CallRow.__table__)
        stmt = stmt.on_conflict_do_update(index_elements=["unit", "call"], set_=_earliest_wins(CallRow.__table__, stmt, CALL_STAMPS, CALL_FOLLOWERS))
        session.execute(stmt, calls)
    cases = rows.cases()
    if cases:
        stmt = _insert(session, CaseRow.__table__)
        stmt = stmt.on_conflict_do_update(index_elements=["unit", "case"], set_=_earliest_wins(CaseRow.__table__, stmt, CASE_STAMPS, CASE_FOLLOWERS))
        session.execute(stmt, cases)
    # Every table is written in key order, so concurrent writers take row locks in one order and
    # cannot deadlock each other.
    if rows.snapshots:
        snapshots = sorted(rows.snapshots, key=lambda r: (r["unit"], r["stamp"]))
        session.execute(_insert(session, SnapshotRow.__table__).on_conflict_do_nothing(), snapshots)
    if rows.visits:
        visits = sorted(rows.visits, key=lambda r: (r["unit"], r["event_id"]))
        session.execute(_insert(session, DoctorVisitRow.__table__).on_conflict_do_nothing(), visits)


__all__ = ["EntityRows", "merge_rows"]
