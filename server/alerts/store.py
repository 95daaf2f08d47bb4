"""Alerts the jobs raise for a unit: a case near or past its 3-day deadline, a silent collector, an audit
mismatch, a telephone figure under target, a growing outbox, a burst of dead letters.

An alert is one row per (unit, kind, subject), so raising the same alert again changes nothing: a case
alerts once, however many sweeps see it overdue. A cleared alert (a collector seen again) is raised
anew in the same row when its subject falls silent again. Details are JSON without personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

import orjson
from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from ..storage.job_tables import Alert
from ..storage.one_of import one_of
from ..storage.upsert import dialect_insert

ASSESSMENT_OVERDUE = "assessment_overdue"
ASSESSMENT_AT_RISK = "assessment_at_risk"
TELEPHONE_BELOW_TARGET = "telephone_below_target"
COLLECTOR_SILENT = "collector_silent"
OUTBOX_GROWING = "outbox_growing"
AUDIT_MISMATCH = "audit_mismatch"
DEAD_LETTER_BURST = "dead_letter_burst"

# Who an alert is for: the clinic (its cases and figures) or the installers (its devices).
DEVICE_KINDS = frozenset({COLLECTOR_SILENT, OUTBOX_GROWING, DEAD_LETTER_BURST})


@dataclass(frozen=True)
class AlertRaised:
    """An alert a job wants raised."""

    unit: str
    kind: str
    subject: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class AlertRecord:
    """An alert as stored, for the API and the dashboard (the table model does not leave this module)."""

    id: int
    unit: str
    kind: str
    subject: str
    detail: dict[str, Any]
    created_at: datetime
    cleared_at: datetime | None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "unit": self.unit,
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "created_at": self.created_at.isoformat(),
            "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None,
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
            "acknowledged_by": self.acknowledged_by,
        }


def raise_alerts(session: Session, alerts: Iterable[AlertRaised], now: datetime) -> list[AlertRaised]:
    """Store the alerts that are new (or were cleared and are raised again); return those."""
    wanted = {(a.unit, a.kind, a.subject): a for a in alerts}
    if not wanted:
        return []
    table = Alert.__table__
    stmt = dialect_insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["unit", "kind", "subject"],
        set_={
            "detail": stmt.excluded.detail,
            "created_at": stmt.excluded.created_at,
            "cleared_at": None,
            "notified_at": None,
            "acknowledged_at": None,
            "acknowledged_by": None,
        },
        where=table.c.cleared_at.is_not(None),
    ).returning(table.c.unit, table.c.kind, table.c.subject)
    # In key order, so that two writers (a lease handover overlapping) lock rows in the same order.
    rows = [
        {
            "unit": a.unit,
            "kind": a.kind,
            "subject": a.subject,
            "detail": orjson.dumps(a.detail, option=orjson.OPT_SORT_KEYS).decode(),
            "created_at": now,
            "cleared_at": None,
        }
        for _, a in sorted(wanted.items())
    ]
    raised = {tuple(row) for row in session.execute(stmt, rows)}
    return [alert for key, alert in wanted.items() if key in raised]


def clear_alerts(session: Session, unit: str, kind: str, subjects: Iterable[str], now: datetime) -> int:
    """Mark open alerts of these subjects cleared; return how many were open."""
    subjects = list(subjects)
    if not subjects:
        return 0
    table = Alert.__table__
    result = session.execute(
        update(table).where(table.c.unit == unit, table.c.kind == kind, table.c.subject.in_(subjects), table.c.cleared_at.is_(None)).values(cleared_at=now)
    )
    return result.rowcount


def clear_alerts_of(session: Session, kind: str, subjects: Iterable[tuple[str, str]], now: datetime) -> int:
    """`clear_alerts` for many units in one statement: the open alerts of `kind` with these (unit, subject)."""
    pairs = sorted(set(subjects))
    if not pairs:
        return 0
    table = Alert.__table__
    result = session.execute(
        update(table).where(table.c.kind == kind, tuple_(table.c.unit, table.c.subject).in_(pairs), table.c.cleared_at.is_(None)).values(cleared_at=now)
    )
    return result.rowcount


def open_subjects(session: Session, units: list[str], kinds: Iterable[str]) -> set[tuple[str, str, str]]:
    """(unit, kind, subject) of the open alerts of `kinds` for `units`."""
    table = Alert.__table__
    query = select(table.c.unit, table.c.kind, table.c.subject).where(one_of(table.c.unit, units), table.c.kind.in_(list(kinds)), table.c.cleared_at.is_(None))
    return {(unit, kind, subject) for unit, kind, subject in session.execute(query)}


def recent_alerts(sessions: sessionmaker[Session], unit: str | None, since: datetime, kind: str | None = None) -> list[AlertRecord]:
    """Alerts raised at or after `since`, oldest first, for one unit (or every unit when `unit` is None)."""
    query = select(Alert).where(Alert.created_at >= since)
    if unit is not None:
        query = query.where(Alert.unit == unit)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    with sessions() as session:
        rows = session.scalars(query.order_by(Alert.created_at, Alert.id)).all()
        return [record(row) for row in rows]


def record(row: Alert) -> AlertRecord:
    assert row.id is not None  # rows read back always have an id
    return AlertRecord(
        row.id, row.unit, row.kind, row.subject, orjson.loads(row.detail), row.created_at, row.cleared_at, row.acknowledged_at, row.acknowledged_by
    )


STATES = ("open", "unacknowledged", "acknowledged", "cleared", "all")


def query_alerts(session: Session, units: list[str] | None, kind: str | None = None, state: str = "open", limit: int = 200) -> list[AlertRecord]:
    """Alerts of `units` (None: every unit), newest first. `state`: open (not cleared), unacknowledged (open
    and not acknowledged), acknowledged, cleared or all."""
    query = select(Alert)
    if units is not None:
        query = query.where(Alert.unit.in_(units))
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if state == "open":
        query = query.where(Alert.cleared_at.is_(None))
    elif state == "unacknowledged":
        query = query.where(Alert.cleared_at.is_(None), Alert.acknowledged_at.is_(None))
    elif state == "acknowledged":
        query = query.where(Alert.acknowledged_at.is_not(None))
    elif state == "cleared":
        query = query.where(Alert.cleared_at.is_not(None))
    return [record(row) for row in session.scalars(query.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit))]


def open_counts(session: Session, unit: str, kinds: Iterable[str] | None = None) -> tuple[int, int]:
    """(open, of those not acknowledged) alerts of a unit, of `kinds` (None: all)."""
    query = select(Alert.acknowledged_at).where(Alert.unit == unit, Alert.cleared_at.is_(None))
    if kinds is not None:
        query = query.where(Alert.kind.in_(list(kinds)))
    acknowledged = list(session.scalars(query))
    return len(acknowledged), sum(1 for at in acknowledged if at is None)


def acknowledge(session: Session, alert_id: int, by: str, now: datetime) -> bool:
    """Record the first acknowledgement (who, when); False when it was acknowledged already."""
    table = Alert.__table__
    result = session.execute(
        update(table).where(table.c.id == alert_id, table.c.acknowledged_at.is_(None)).values(acknowledged_at=now, acknowledged_by=by[:200])
    )
    return result.rowcount == 1
