"""Silent-collector detection: a device not heard from for a while is "silent" (silence is "no data",
never "compliant"), with one alert per silence, cleared when the device is heard from again.

A device counts from when it was last seen, or from its registration if it was never seen: a device
provisioned but never connected is silent too. Retired devices are left alone and their alerts cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..storage.job_tables import Alert
from ..storage.registry_tables import DeviceRow
from ..alerts.store import COLLECTOR_SILENT, AlertRaised, clear_alerts, raise_alerts

SILENT = "silent"


@dataclass(frozen=True)
class SilenceReport:
    fell_silent: int  # alerts raised now
    heard_again: int  # alerts cleared now
    silent: int  # devices silent after this run


def detect_silent_collectors(sessions: sessionmaker[Session], now: datetime, silent_after: timedelta) -> SilenceReport:
    cutoff = now - silent_after
    devices = DeviceRow.__table__
    heard_from = func.coalesce(devices.c.last_seen_at, devices.c.registered_at)
    active = devices.c.retired_at.is_(None)
    with sessions.begin() as session:
        session.execute(update(devices).where(active, devices.c.status == SILENT, heard_from >= cutoff).values(status="online"))
        session.execute(update(devices).where(active, heard_from < cutoff, or_(devices.c.status.is_(None), devices.c.status != SILENT)).values(status=SILENT))
        silent = session.execute(select(devices.c.unit, devices.c.device, devices.c.last_seen_at).where(active, devices.c.status == SILENT)).all()
        raised = raise_alerts(
            session,
            [
                AlertRaised(
                    unit, COLLECTOR_SILENT, device, {"last_seen_at": seen.isoformat() if seen else None, "silent_after_s": int(silent_after.total_seconds())}
                )
                for unit, device, seen in silent
            ],
            now,
        )
        cleared = _clear_heard_again(session, {(unit, device) for unit, device, _ in silent}, now)
    return SilenceReport(fell_silent=len(raised), heard_again=cleared, silent=len(silent))


def _clear_heard_again(session: Session, silent: set[tuple[str, str]], now: datetime) -> int:
    """Clear the open silence alerts of every device no longer silent (heard again, or retired)."""
    alerts = Alert.__table__
    open_alerts = session.execute(select(alerts.c.unit, alerts.c.subject).where(and_(alerts.c.kind == COLLECTOR_SILENT, alerts.c.cleared_at.is_(None)))).all()
    by_unit: dict[str, list[str]] = {}
    for unit, device in open_alerts:
        if (unit, device) not in silent:
            by_unit.setdefault(unit, []).append(device)
    return sum(clear_alerts(session, unit, COLLECTOR_SILENT, devices, now) for unit, devices in by_unit.items())
