"""The deadline sweep: alert each in-scope open case once, when it passes its 3-day deadline (SPEC 2.2).

A case's deadline is the end of its local contact day + 3, so deadlines only pass at a unit's local
midnight. Each sweep looks at the cases whose deadline fell in (since, now]: `since` is the unit's last
sweep, or `late_window` ago if that is earlier, so a case that becomes known late (a collector back
after an outage) still alerts. Who is in scope and open is decided by the metric rules themselves
(`CaseLedger`), over the cases `load_cases` rebuilds from the database.
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

from ..figures.loading import load_cases
from ..services import Services
from ..storage.job_tables import SweepMark
from ..storage.tables import UnitActivity
from ..alerts.store import ASSESSMENT_OVERDUE, AlertRaised, raise_alerts
from ..storage.upsert import dialect_insert

# Before any data (ingest refuses events before 1970): as `as_of` of `load_cases`, it adds no open
# cases from other days to the cases of the period.


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
    """Sweep every unit with data; return how many alerts were raised."""
    with services.sessions() as session:
        versions = dict(session.execute(select(UnitActivity.unit, UnitActivity.version)).all())
        marks = {mark.unit: mark for mark in session.scalars(select(SweepMark))}
    raised = 0
    for unit in sorted(versions):
        raised += _sweep_unit(services, unit, versions[unit], marks.get(unit), now, late_window)
    return raised


def _sweep_unit(services: Services, unit: str, version: int, mark: SweepMark | None, now: datetime, late_window: timedelta) -> int:
    config = services.units.config(unit)
    if mark is not None and _nothing_changed(mark, version, now, config):
        return 0
    since = now - late_window if mark is None else min(mark.swept_at, now - late_window)
    days = contact_days_due(since, now, config)
    with services.sessions.begin() as session:
        alerts = []
        if days is not None:
            # `as_of` before any data: only the cases contacted (or assessed) on those days are loaded.
            ledger = load_cases(session, unit, days, None, config)
            alerts = [
                AlertRaised(unit, ASSESSMENT_OVERDUE, overdue.case, {"contact_day": overdue.contact_day, "deadline": overdue.deadline.isoformat()})
                for overdue in newly_overdue(ledger, since, now, config)
            ]
        raised = raise_alerts(session, alerts, now)
        _mark(session, unit, now, version)
    return len(raised)


def _nothing_changed(mark: SweepMark, version: int, now: datetime, config: UnitConfig) -> bool:
    """No new data since the last sweep, and no local midnight (so no deadline) passed since then."""
    return mark.data_version == version and mark.swept_at.astimezone(config.tz).date() == now.astimezone(config.tz).date()


def _mark(session: Session, unit: str, now: datetime, version: int) -> None:
    table = SweepMark.__table__
    stmt = dialect_insert(session, table).values(unit=unit, swept_at=now, data_version=version)
    session.execute(stmt.on_conflict_do_update(index_elements=["unit"], set_={"swept_at": now, "data_version": version}))
