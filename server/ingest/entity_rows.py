"""From a batch of new events to the rows that keep metric state in the database.

A call or case row holds, per kind of event, the stamp key of the earliest such event (see
`storage.stamp_keys`: comparing keys as strings compares (instant, event id), the engine's own rule
for "earliest"), and the values that came with it. The fold here works on those keys directly, the
same rule the pure ledgers of `server.metrics` apply to Stamps, and which stamp each kind of event
sets comes from the ledgers' own tables. The rows are then merged into the stored ones with
"earliest wins" upserts, which commute, so batches may be committed in any order and by several
processes at once.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.orm import Session

from vardkoll.protocol import ListingSnapshot, VisitCompleted
from vardkoll.server.metrics import assessment, telephone

from ..storage.stamp_keys import local_date, stamp_key_us
from ..storage.tables import CALL_STAMPS, CASE_STAMPS, CallRow, CaseRow, DoctorVisitRow, SnapshotRow
from .bulk_sql import earliest_wins_clause, execute_rows

# A stamp column and the columns whose values belong to the event that stamp came from.
CALL_FOLLOWERS = {"offered": ("offered_day",), "rejected": ("rejected_day",)}
CASE_FOLLOWERS = {"contact": ("contact_day", "listed"), "assessed": ("assessed_day", "profession")}

# `version` last: left empty here, filled by `merge_rows` with the version the commit gave the unit.
CALL_COLUMNS = ("unit", "call", *CALL_STAMPS, "offered_day", "rejected_day", "version")
CASE_COLUMNS = ("unit", "case", *CASE_STAMPS, "contact_day", "listed", "assessed_day", "profession", "version")
SNAPSHOT_COLUMNS = ("unit", "stamp", "body")
VISIT_COLUMNS = ("unit", "event_id", "at_us", "day", "patient", "practitioner", "fixed_doctor")

# Per event class, the position in a row of the stamp it sets.
_CALL_SLOT = {kind: CALL_COLUMNS.index(name) for kind, name in telephone.FIELD_OF_CLASS.items()}
_CASE_SLOT = {kind: CASE_COLUMNS.index(name) for kind, name in assessment.FIELD_OF_CLASS.items()}
_OFFERED, _OFFERED_DAY, _REJECTED, _REJECTED_DAY, _MADE, _REACHED = (
    CALL_COLUMNS.index(name) for name in ("offered", "offered_day", "rejected", "rejected_day", "callback_made", "callback_reached")
)
_CONTACT, _CONTACT_DAY, _LISTED, _ASSESSED, _ASSESSED_DAY, _PROFESSION = (
    CASE_COLUMNS.index(name) for name in ("contact", "contact_day", "listed", "assessed", "assessed_day", "profession")
)


def _earliest(row: list[Any], slot: int, stamp: str) -> bool:
    """Put `stamp` in `row[slot]` if it is earlier than what is there; True if it was."""
    current = row[slot]
    if current is None or stamp < current:
        row[slot] = stamp
        return True
    return False


class EntityRows:
    """The rows a group of new events contributes, per table, in each table's column order."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], list[Any]] = {}
        self._cases: dict[tuple[str, str], list[Any]] = {}
        self._snapshots: list[tuple[Any, ...]] = []
        self._visits: list[tuple[Any, ...]] = []

    def add(self, event: Any, micros: int, tz: Any, body: bytes | None = None) -> None:
        """`micros`: the event's `at` as epoch microseconds; `tz`: its unit's time zone; `body`: the
        event encoded, where the caller has it already."""
        kind = type(event)
        slot = _CALL_SLOT.get(kind)
        if slot is not None:
            self._call(event, slot, micros, tz)
            return
        slot = _CASE_SLOT.get(kind)
        if slot is not None:
            self._case(event, slot, micros, tz)
        elif kind is ListingSnapshot:
            self._snapshots.append((event.unit, stamp_key_us(micros, event.id), body or msgspec.json.encode(event)))
        elif kind is VisitCompleted:
            if event.profession == "doctor" and event.listed:
                self._visits.append((event.unit, event.id, micros, local_date(micros, tz), event.patient, event.practitioner, event.fixed_doctor))

    def _call(self, event: Any, slot: int, micros: int, tz: Any) -> None:
        key = (event.unit, event.call)
        row = self._calls.get(key)
        if row is None:
            row = self._calls[key] = [*key, *(None,) * (len(CALL_COLUMNS) - 2)]
        stamp = stamp_key_us(micros, event.id)
        if _earliest(row, slot, stamp):
            if slot == _OFFERED:
                row[_OFFERED_DAY] = local_date(micros, tz)
            elif slot == _REJECTED:
                row[_REJECTED_DAY] = local_date(micros, tz)
        if slot == _MADE and event.reached:
            _earliest(row, _REACHED, stamp)

    def _case(self, event: Any, slot: int, micros: int, tz: Any) -> None:
        key = (event.unit, event.case)
        row = self._cases.get(key)
        if row is None:
            row = self._cases[key] = [*key, *(None,) * (len(CASE_COLUMNS) - 2)]
        if _earliest(row, slot, stamp_key_us(micros, event.id)):
            if slot == _CONTACT:
                row[_CONTACT_DAY], row[_LISTED] = local_date(micros, tz), event.listed
            elif slot == _ASSESSED:
                row[_ASSESSED_DAY], row[_PROFESSION] = local_date(micros, tz), event.profession

    def calls(self) -> list[list[Any]]:
        return [self._calls[key] for key in sorted(self._calls)]

    def cases(self) -> list[list[Any]]:
        return [self._cases[key] for key in sorted(self._cases)]

    def snapshots(self) -> list[tuple[Any, ...]]:
        return sorted(self._snapshots, key=lambda row: (row[0], row[1]))

    def visits(self) -> list[tuple[Any, ...]]:
        return sorted(self._visits, key=lambda row: (row[0], row[1]))


_NEWEST = ', "version" = excluded."version"'
_CALL_UPSERT = "ON CONFLICT (unit, call) DO UPDATE SET " + earliest_wins_clause("calls", CALL_STAMPS, CALL_FOLLOWERS) + _NEWEST
_CASE_UPSERT = 'ON CONFLICT (unit, "case") DO UPDATE SET ' + earliest_wins_clause("cases", CASE_STAMPS, CASE_FOLLOWERS) + _NEWEST


def merge_rows(session: Session, rows: EntityRows, versions: dict[str, int]) -> None:
    """Upsert every row of the group, keeping the earliest stamp of each kind, and give each call and
    case row the version this commit gave its unit (`versions`), whether or not a stamp changed. Every
    table is written in key order, so concurrent writers take row locks in one order and cannot
    deadlock each other."""
    calls, cases = rows.calls(), rows.cases()
    for row in calls:
        row[-1] = versions[row[0]]
    for row in cases:
        row[-1] = versions[row[0]]
    execute_rows(session, CallRow.__table__, CALL_COLUMNS, calls, _CALL_UPSERT)
    execute_rows(session, CaseRow.__table__, CASE_COLUMNS, cases, _CASE_UPSERT)
    execute_rows(session, SnapshotRow.__table__, SNAPSHOT_COLUMNS, rows.snapshots(), "ON CONFLICT DO NOTHING")
    execute_rows(session, DoctorVisitRow.__table__, VISIT_COLUMNS, rows.visits(), "ON CONFLICT DO NOTHING")
