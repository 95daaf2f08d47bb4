"""The deadline sweep: alert each in-scope open case once, when it passes its 3-day deadline (SPEC 2.2).

A case's deadline is the end of its local contact day + 3, so deadlines only pass at a unit's local
midnight. Each sweep looks at the cases whose deadline fell in (since, now]: `since` is the unit's last
sweep, or `late_window` ago if that is earlier, so a case that becomes known late (a collector back
after an outage) still alerts. Who is in scope and open is decided by the metric rules themselves
(`CaseLedger`), over the cases `load_cases_of` rebuilds from the database, for many units per query: at
a country's 1 200 units a transaction per unit took 1.5-3 s a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from vardkoll.server.metrics.assessment import LIMIT_DAYS, CaseLedger
from vardkoll.server.metrics.calendar import Period
from vardkoll.server.metrics.config import UnitConfig

from ..figures.loading import load_cases_of
from ..services import Services
from ..storage.job_tables import SweepMark
from ..storage.tables import UnitActivity
from ..alerts.store import ASSESSMENT_OVERDUE, AlertRaised, open_subjects, raise_alerts
from ..storage.upsert import dialect_insert

CHUNK_UNITS = 500  # units per transaction: a sweep's statements stay few, each transaction bounded


@dataclass(frozen=True)
class OverdueCase:
    case: str
    contact_day: str
    deadline: datetime


def newly_overdue(ledger: CaseLedger, since: datetime, now: datetime, config: UnitConfig) -> Iterator[OverdueCase]:
    """The cases in scope and open at `now` whose deadline passed in (since, now]: pending at `since`
    (deadline not passed), overdue at `now`, as `CaseLedger` counts `pending` and `overdue_open`."""
    for case in ledger.open_cases(now, config):
        if since <= case.deadline < now:
            yield OverdueCase(case.case, case.contact_day.isoformat(), case.deadline)


def contact_days_due(since: datetime, now: datetime, config: UnitConfig) -> Period | None:
    """The contact days whose deadline falls in [since, now), or None when there are none."""
    first = since.astimezone(config.tz).date() - timedelta(days=LIMIT_DAYS)
    last = now.astimezone(config.tz).date() - timedelta(days=LIMIT_DAYS + 1)
    return Period(first, last) if first <= last else None


def sweep_deadlines(services: Services, now: datetime, late_window: timedelta) -> int:
    """Sweep every unit whose data changed or whose local midnight passed since its last sweep, in a few
    statements per chunk of units; return how many alerts were raised."""
    with services.sessions() as session:
        versions = dict(session.execute(select(UnitActivity.unit, UnitActivity.version)).all())
        marks = {mark.unit: mark for mark in session.scalars(select(SweepMark))}
    configs = {unit: services.units.config(unit) for unit in versions}
    due = [unit for unit in sorted(versions) if unit not in marks or not _nothing_changed(marks[unit], versions[unit], now, configs[unit])]
    raised = 0
    for start in range(0, len(due), CHUNK_UNITS):
        chunk = due[start : start + CHUNK_UNITS]
        sinces = {unit: now - late_window if unit not in marks else min(marks[unit].swept_at, now - late_window) for unit in chunk}
        with services.sessions.begin() as session:
            # The late window brings back the cases alerted in earlier sweeps: only those not open are raised
            # (raise_alerts runs one INSERT per alert).
            open_now = open_subjects(session, chunk, (ASSESSMENT_OVERDUE,))
            alerts = [alert for alert in _overdue_alerts(session, sinces, now, configs) if (alert.unit, alert.kind, alert.subject) not in open_now]
            raised += len(raise_alerts(session, alerts, now))
            _mark(session, {unit: versions[unit] for unit in chunk}, now)
    return raised


def _overdue_alerts(session: Session, sinces: dict[str, datetime], now: datetime, configs: dict[str, UnitConfig]) -> list[AlertRaised]:
    """The alerts of the cases newly overdue per unit; the cases of units with the same contact days due
    (same time zone and last sweep) are read in one query."""
    by_days: dict[Period, list[str]] = {}
    for unit, since in sinces.items():
        if (days := contact_days_due(since, now, configs[unit])) is not None:
            by_days.setdefault(days, []).append(unit)
    alerts = []
    for days, units in by_days.items():
        # `as_of` None: only the cases contacted (or assessed) on those days are loaded.
        ledgers = load_cases_of(session, units, days, None, configs)
        for unit in units:
            alerts += [
                AlertRaised(unit, ASSESSMENT_OVERDUE, overdue.case, {"contact_day": overdue.contact_day, "deadline": overdue.deadline.isoformat()})
                for overdue in newly_overdue(ledgers[unit], sinces[unit], now, configs[unit])
            ]
    return alerts


def _nothing_changed(mark: SweepMark, version: int, now: datetime, config: UnitConfig) -> bool:
    """No new data since the last sweep, and no local midnight (so no deadline) passed since then."""
    return mark.data_version == version and mark.swept_at.astimezone(config.tz).date() == now.astimezone(config.tz).date()


def _mark(session: Session, versions: dict[str, int], now: datetime) -> None:
    """Record the sweep of these units (unit -> data version), in one statement run for all of them."""
    table = SweepMark.__table__
    stmt = dialect_insert(session, table)
    stmt = stmt.on_conflict_do_update(index_elements=["unit"], set_={"swept_at": stmt.excluded.swept_at, "data_version": stmt.excluded.data_version})
    session.execute(stmt, [{"unit": unit, "swept_at": now, "data_version": version} for unit, version in versions.items()])
