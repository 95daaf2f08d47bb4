"""From a batch of new events to the rows that keep metric state in the database.

The pure ledgers of `server.metrics` fold the batch (earliest event of each kind per call and case);
the rows they give are then merged into the stored ones with "earliest wins" upserts, which commute,
so batches may be committed in any order and by several processes at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from vardkoll.protocol import EventBase, ListingSnapshot, VisitCompleted
from vardkoll.server.metrics.assessment import CaseLedger
from vardkoll.server.metrics.config import UnitConfig
from vardkoll.server.metrics.stamps import Stamp
from vardkoll.server.metrics.telephone import CallLedger

from ..storage.stamp_keys import epoch_us, local_date, stamp_key
from ..storage.tables import CallRow, CaseRow, DoctorVisitRow, SnapshotRow
from .bulk_sql import earliest_wins_clause, execute_rows

CALL_STAMPS = ("offered", "answered", "callback_booked", "callback_made", "callback_reached", "abandoned", "rejected")
# A stamp column and the columns whose values belong to the event that stamp came from.
CALL_FOLLOWERS = {"offered": ("offered_day",), "rejected": ("rejected_day",)}
CASE_STAMPS = ("contact", "assessed", "excluded", "cancelled")
CASE_FOLLOWERS = {"contact": ("contact_day", "listed"), "assessed": ("assessed_day", "profession")}


def _known_key(epochs: dict[tuple[str, str], int], unit: str) -> Callable[[Stamp | None], str | None]:
    """The stamp key of one unit's stamps, with the epoch microseconds of the batch's events already
    worked out (by unit and event id); a stamp of another event is keyed the long way."""

    def key(stamp: Stamp | None) -> str | None:
        if stamp is None:
            return None
        micros = epochs.get((unit, stamp.event_id))
        return stamp_key(stamp.at, stamp.event_id) if micros is None else f"{micros:017d}|{stamp.event_id}"

    return key


class EntityRows:
    """The rows one batch of new events contributes, per table."""

    def __init__(self, epochs: dict[tuple[str, str], int] | None = None) -> None:
        """`epochs`: (unit, event id) -> epoch microseconds of its `at`, where the caller has them already."""
        self._epochs = epochs or {}
        self._calls: dict[str, CallLedger] = {}
        self._cases: dict[str, CaseLedger] = {}
        self.snapshots: list[dict[str, Any]] = []
        self.visits: list[dict[str, Any]] = []

    def add(self, event: EventBase, config: UnitConfig) -> None:
        micros = self._epochs.get((event.unit, event.id))
        day = event.at.astimezone(config.tz).date() if micros is None else local_date(micros, config.tz)
        stamp = Stamp(event.at, event.id, day)
        if isinstance(event, ListingSnapshot):
            self.snapshots.append({"unit": event.unit, "stamp": _known_key(self._epochs, event.unit)(stamp), "body": msgspec.json.encode(event)})
        elif isinstance(event, VisitCompleted):
            if event.profession == "doctor" and event.listed:
                self.visits.append(
                    {"unit": event.unit, "event_id": event.id, "at_us": self._epochs.get((event.unit, event.id)) or epoch_us(event.at), "day": stamp.day,
                     "patient": event.patient, "practitioner": event.practitioner, "fixed_doctor": event.fixed_doctor}
                )
        elif type(event) in CaseLedger.event_classes:
            self._cases.setdefault(event.unit, CaseLedger()).apply(event, stamp)
        else:
            self._calls.setdefault(event.unit, CallLedger()).apply(event, stamp)

    def calls(self) -> list[dict[str, Any]]:
        rows = []
        for unit, ledger in sorted(self._calls.items()):
            key = _known_key(self._epochs, unit)
            for call, state in sorted(ledger.calls.items()):
                row = {"unit": unit, "call": call, **{name: key(getattr(state, name)) for name in CALL_STAMPS}}
                row["offered_day"] = state.offered.day if state.offered else None
                row["rejected_day"] = state.rejected.day if state.rejected else None
                rows.append(row)
        return rows

    def cases(self) -> list[dict[str, Any]]:
        rows = []
        for unit, ledger in sorted(self._cases.items()):
            key = _known_key(self._epochs, unit)
            for case_id, state in sorted(ledger.cases.items()):
                row = {"unit": unit, "case": case_id, **{name: key(getattr(state, name)) for name in CASE_STAMPS}}
                row["contact_day"] = state.contact.day if state.contact else None
                row["listed"] = state.listed if state.contact else None
                row["assessed_day"] = state.assessed.day if state.assessed else None
                row["profession"] = state.profession if state.assessed else None
                rows.append(row)
        return rows


_CALL_COLUMNS = ("unit", "call", *CALL_STAMPS, "offered_day", "rejected_day")
_CASE_COLUMNS = ("unit", "case", *CASE_STAMPS, "contact_day", "listed", "assessed_day", "profession")
_CALL_UPSERT = "ON CONFLICT (unit, call) DO UPDATE SET " + earliest_wins_clause("calls", CALL_STAMPS, CALL_FOLLOWERS)
_CASE_UPSERT = 'ON CONFLICT (unit, "case") DO UPDATE SET ' + earliest_wins_clause("cases", CASE_STAMPS, CASE_FOLLOWERS)
_SNAPSHOT_COLUMNS = ("unit", "stamp", "body")
_VISIT_COLUMNS = ("unit", "event_id", "at_us", "day", "patient", "practitioner", "fixed_doctor")


def merge_rows(session: Session, rows: EntityRows) -> None:
    """Upsert every row of the batch, keeping the earliest stamp of each kind. Every table is written
    in key order, so concurrent writers take row locks in one order and cannot deadlock each other."""
    execute_rows(session, CallRow.__table__, _CALL_COLUMNS, rows.calls(), _CALL_UPSERT)
    execute_rows(session, CaseRow.__table__, _CASE_COLUMNS, rows.cases(), _CASE_UPSERT)
    snapshots = sorted(rows.snapshots, key=lambda r: (r["unit"], r["stamp"]))
    execute_rows(session, SnapshotRow.__table__, _SNAPSHOT_COLUMNS, snapshots, "ON CONFLICT DO NOTHING")
    visits = sorted(rows.visits, key=lambda r: (r["unit"], r["event_id"]))
    execute_rows(session, DoctorVisitRow.__table__, _VISIT_COLUMNS, visits, "ON CONFLICT DO NOTHING")
