"""Rebuild the pure ledgers of units from the stored metric state, loading only what a period needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from vardkoll.protocol import ListingSnapshot
from vardkoll.server.metrics.assessment import CaseLedger, CaseState
from vardkoll.server.metrics.calendar import Period
from vardkoll.server.metrics.config import UnitConfig
from vardkoll.server.metrics.continuity import DoctorVisit, VisitLedger, coc_window
from vardkoll.server.metrics.fixed_doctor import SnapshotLedger
from vardkoll.server.metrics.telephone import CallLedger, CallState

from ..storage.one_of import one_of
from ..storage.stamp_keys import from_epoch_us, stamp_key, stamp_of
from ..storage.tables import CALL_STAMPS, CASE_STAMPS, CallRow, CaseRow, DoctorVisitRow, SnapshotRow

_SNAPSHOT = msgspec.json.Decoder(ListingSnapshot)
_LAST = "|\U0010ffff"
_CALL_STAMP_COLUMNS = tuple(getattr(CallRow, name) for name in CALL_STAMPS)
_CASE_STAMP_COLUMNS = tuple(getattr(CaseRow, name) for name in CASE_STAMPS)


def load_calls(session: Session, unit: str, period: Period, config: UnitConfig) -> CallLedger:
    return load_calls_of(session, [unit], period, {unit: config})[unit]


def load_calls_of(session: Session, units: list[str], period: Period, configs: dict[str, UnitConfig]) -> dict[str, CallLedger]:
    """Per unit, the calls offered or rejected in the period, for several units in one query."""
    ledgers = {unit: CallLedger() for unit in units}
    # Plain column tuples, not ORM instances: building instances cost more than the query itself.
    rows = session.execute(select(*CALL_ROW_COLUMNS).where(one_of(CallRow.unit, units), calls_anchored_in(period)))
    for unit, call, *values in rows:
        ledgers[unit].restore(call, call_state(values, configs[unit].tz))
    return ledgers


# A call or case row as its state is read: unit, id, then what `call_state` / `case_state` take.
CALL_ROW_COLUMNS = (CallRow.unit, CallRow.call, *_CALL_STAMP_COLUMNS)
CASE_ROW_COLUMNS = (CaseRow.unit, CaseRow.case, CaseRow.listed, CaseRow.profession, *_CASE_STAMP_COLUMNS)


# The days a row's parts lie on: a call's offer and rejection days, a case's assessment and contact days.
CALL_DAY_COLUMNS = (CallRow.offered_day, CallRow.rejected_day)
CASE_DAY_COLUMNS = (CaseRow.assessed_day, CaseRow.contact_day)


def calls_anchored_in(period: Period) -> Any:
    """The calls whose telephone parts lie in the period: offered or rejected in it."""
    return or_(*(column.between(period.start, period.end) for column in CALL_DAY_COLUMNS))


def cases_anchored_in(period: Period) -> Any:
    """The cases whose assessment parts lie in the period: contacted or assessed in it."""
    return or_(*(column.between(period.start, period.end) for column in CASE_DAY_COLUMNS))


def call_state(keys: Sequence[str | None], tz: ZoneInfo) -> CallState:
    """A call's state from its stamp keys (`CALL_STAMPS` order), its days in time zone `tz`."""
    return CallState(**{name: stamp_of(key, tz) for name, key in zip(CALL_STAMPS, keys)})


def case_state(values: Sequence[Any], tz: ZoneInfo) -> CaseState:
    """A case's state from (listed, profession, *stamp keys in `CASE_STAMPS` order)."""
    listed, profession, *keys = values
    state = CaseState(**{name: stamp_of(key, tz) for name, key in zip(CASE_STAMPS, keys)})
    if listed is not None:
        state.listed = listed
    state.profession = profession or ""
    return state


def load_cases(session: Session, unit: str, period: Period, as_of: datetime | None, config: UnitConfig) -> CaseLedger:
    """Cases assessed or contacted in the period, and every case that may be open at `as_of` (None:
    no open cases, only the rows anchored in the period)."""
    return load_cases_of(session, [unit], period, as_of, {unit: config})[unit]


def load_cases_of(session: Session, units: list[str], period: Period, as_of: datetime | None, configs: dict[str, UnitConfig]) -> dict[str, CaseLedger]:
    """`load_cases` for several units in one query."""
    ledgers = {unit: CaseLedger() for unit in units}
    anchored = cases_anchored_in(period)
    if as_of is not None:
        as_of_key = stamp_key(as_of, _LAST)
        anchored = or_(anchored, and_(CaseRow.contact <= as_of_key, or_(CaseRow.assessed.is_(None), CaseRow.assessed > as_of_key)))
    # Without `as_of` the open-case branch is left out, not asked at the epoch: "assessed after the epoch"
    # made the database read every assessed case the units ever had (a day of 16 units: 72 → 15 ms).
    for unit, case, *values in session.execute(select(*CASE_ROW_COLUMNS).where(one_of(CaseRow.unit, units), anchored)):
        ledgers[unit].restore(case, case_state(values, configs[unit].tz))
    return ledgers


def load_snapshots(session: Session, unit: str, cutoff: datetime) -> SnapshotLedger:
    """Only the latest snapshot at or before `cutoff` matters."""
    ledger = SnapshotLedger()
    row = session.scalars(
        select(SnapshotRow).where(SnapshotRow.unit == unit, SnapshotRow.stamp <= stamp_key(cutoff, _LAST)).order_by(SnapshotRow.stamp.desc()).limit(1)
    ).first()
    if row is not None:
        snapshot = _SNAPSHOT.decode(row.body)
        # The snapshot ledger orders by instant and id; the stamp's day is not used, so UTC will do.
        ledger.apply(snapshot, stamp_of(row.stamp, timezone.utc))  # type: ignore[arg-type]  # the stored body decodes to a ListingSnapshot
    return ledger


def load_latest_snapshots(session: Session, units: list[str], cutoff: datetime) -> dict[str, SnapshotLedger]:
    """`load_snapshots` for many units at once: one statement, whatever the number of units (each
    unit's latest stamp by the cutoff, joined to its row: under load a round trip costs more than the
    join, and a Regionvy or a live update after new events asks this of the changed units)."""
    ledgers = {unit: SnapshotLedger() for unit in units}
    for unit, stamp, body in session.execute(_latest_snapshots_statement(), {"units": units, "key": stamp_key(cutoff, _LAST)}):
        ledgers[unit].apply(_SNAPSHOT.decode(body), stamp_of(stamp, timezone.utc))  # type: ignore[arg-type]  # msgspec decodes to the union; the snapshot decoder gives a ListingSnapshot
    return ledgers


@lru_cache(maxsize=None)
def _latest_snapshots_statement() -> Any:
    """Built once (its values are bound parameters: the units, the cutoff's stamp key)."""
    latest = (
        select(SnapshotRow.unit, func.max(SnapshotRow.stamp).label("stamp"))
        .where(one_of(SnapshotRow.unit, "units"), SnapshotRow.stamp <= bindparam("key"))
        .group_by(SnapshotRow.unit)
        .subquery()
    )
    return select(SnapshotRow.unit, SnapshotRow.stamp, SnapshotRow.body).join(
        latest, and_(SnapshotRow.unit == latest.c.unit, SnapshotRow.stamp == latest.c.stamp)
    )


def load_visits(session: Session, unit: str, period: Period, since: date | None = None) -> VisitLedger:
    """The visits of the period and of its COC window; from `since` too when that is earlier."""
    ledger = VisitLedger()
    window = coc_window(period.end)
    start = min(window.start, period.start, since or period.start)
    rows = session.execute(
        select(DoctorVisitRow.day, DoctorVisitRow.at_us, DoctorVisitRow.patient, DoctorVisitRow.practitioner, DoctorVisitRow.fixed_doctor).where(
            DoctorVisitRow.unit == unit, DoctorVisitRow.day.between(start, period.end)
        )
    )
    for day, at_us, patient, practitioner, fixed_doctor in rows:
        ledger.restore(day, DoctorVisit(from_epoch_us(at_us), patient, practitioner, fixed_doctor))
    return ledger
