"""The nightly self-audit: re-compute yesterday's four figures from the raw events and compare them with
what the API answers from the stored metric state. Any difference is kept and raises an alert.

The re-computation is the replay path: the archived events, decoded and applied to a fresh
`UnitState` with the unit's settings. It reads the events that can matter for the day: for calls and
visits, those from 18 months before it (the continuity COC looks back 18 months); for cases and
listing snapshots, every one from the start (a case may stay open, and so count as overdue, for any
time; the latest snapshot may be old).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vardkoll.protocol.events import EVENT_DECODER
from vardkoll.server.metrics import METRICS, Period, UnitConfig, UnitState, end_of_day
from vardkoll.server.metrics.calendar import months_earlier
from vardkoll.server.metrics.continuity import COC_WINDOW_MONTHS

from ..services import Services
from ..storage.job_tables import AuditRow
from ..storage.stamp_keys import epoch_us
from ..storage.tables import StoredEvent, UnitActivity
from ..alerts.store import AUDIT_MISMATCH, AlertRaised, raise_alerts
from ..storage.upsert import dialect_insert

IGNORED_KEYS = frozenset({"definition_version", "data"})
UNBOUNDED_TYPES = ("care.contact", "care.assessed", "care.excluded", "care.cancelled", "listing.snapshot")
ATTEMPTS = 3  # data that changes while the audit reads it is read again
_YIELD_ROWS = 5000


@dataclass(frozen=True)
class AuditOutcome:
    unit: str
    day: date
    metric: str
    ok: bool
    difference: dict[str, dict[str, Any]]


def differences(stored: dict[str, Any], recomputed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"details.pending": {"stored": 3, "recomputed": 4}, ...}: every key whose values differ."""
    a, b = _flatten(stored), _flatten(recomputed)
    return {
        key: {"stored": a.get(key), "recomputed": b.get(key)} for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key) or (key in a) != (key in b)
    }


def _flatten(figure: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in figure.items():
        if not prefix and key in IGNORED_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def recompute_day(session: Session, unit: str, day: date, config: UnitConfig) -> dict[str, dict[str, Any]]:
    """The day's four figures from the raw events, as `vardkoll replay` would give them."""
    state = UnitState(unit, config)
    end_us = epoch_us(end_of_day(day, config.tz))
    window_start = datetime.combine(months_earlier(day, COC_WINDOW_MONTHS), time(0), tzinfo=config.tz)
    table = StoredEvent.__table__
    query = (
        select(table.c.body)
        .where(table.c.unit == unit, table.c.at_us <= end_us, or_(table.c.at_us >= epoch_us(window_start), table.c.type.in_(UNBOUNDED_TYPES)))
        .execution_options(yield_per=_YIELD_ROWS)
    )
    for body in session.scalars(query):
        state.apply(EVENT_DECODER.decode(body))
    period = Period(day, day)
    return {metric: state.figure(metric, period) for metric in METRICS}


def audit_unit_day(services: Services, unit: str, day: date) -> list[AuditOutcome]:
    """Compare the stored figures of `unit` for `day` with a re-computation; nothing is written."""
    config = services.units.config(unit, day)
    period = Period(day, day)
    for _ in range(ATTEMPTS):
        before = _data_version(services, unit)
        stored = {metric: services.figures.figure(unit, metric, period) for metric in METRICS}
        with services.sessions() as session:
            recomputed = recompute_day(session, unit, day, config)
        if _data_version(services, unit) == before:
            break  # no commit for this unit while reading: both sides saw the same events
    return [AuditOutcome(unit, day, metric, not diff, diff) for metric in METRICS for diff in [differences(stored[metric], recomputed[metric])]]


def run_self_audit(services: Services, now: datetime) -> list[AuditOutcome]:
    """Audit yesterday (in each unit's time zone) for every unit with data; store outcomes, raise alerts."""
    with services.sessions() as session:
        units = sorted(session.scalars(select(UnitActivity.unit)))
    outcomes: list[AuditOutcome] = []
    for unit in units:
        yesterday = now.astimezone(services.units.config(unit).tz).date() - timedelta(days=1)
        unit_outcomes = audit_unit_day(services, unit, yesterday)
        store_outcomes(services, unit_outcomes, now)
        outcomes.extend(unit_outcomes)
    return outcomes


def store_outcomes(services: Services, outcomes: list[AuditOutcome], now: datetime) -> None:
    if not outcomes:
        return
    table = AuditRow.__table__
    rows = [
        {
            "unit": o.unit,
            "day": o.day,
            "metric": o.metric,
            "ok": o.ok,
            "difference": orjson.dumps(o.difference).decode() if o.difference else None,
            "checked_at": now,
        }
        for o in outcomes
    ]
    mismatches = [
        AlertRaised(o.unit, AUDIT_MISMATCH, f"{o.day.isoformat()}/{o.metric}", {"day": o.day.isoformat(), "metric": o.metric, "difference": o.difference})
        for o in outcomes
        if not o.ok
    ]
    with services.sessions.begin() as session:
        stmt = dialect_insert(session, table)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["unit", "day", "metric"],
                set_={"ok": stmt.excluded.ok, "difference": stmt.excluded.difference, "checked_at": stmt.excluded.checked_at},
            ),
            rows,
        )
        raise_alerts(session, mismatches, now)


def audit_outcomes(services: Services, unit: str, since_day: date) -> list[AuditOutcome]:
    """Stored outcomes of a unit's audits from `since_day` on, by day then metric."""
    with services.sessions() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.unit == unit, AuditRow.day >= since_day).order_by(AuditRow.day, AuditRow.metric)).all()
        return [AuditOutcome(r.unit, r.day, r.metric, r.ok, orjson.loads(r.difference) if r.difference else {}) for r in rows]


def _data_version(services: Services, unit: str) -> int | None:
    with services.sessions() as session:
        return session.scalar(select(UnitActivity.version).where(UnitActivity.unit == unit))
