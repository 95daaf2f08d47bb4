"""The alert checks the rules add to the jobs' own (overdue cases, silent collectors, audit mismatches):
a 3-day case near its deadline, today's telephone figure under target at set local times, a collector's
outbox growing, a burst of dead letters. Each raises into the alerts table, where (unit, kind, subject)
is unique, so running a check twice raises nothing new.

- at risk: subject the case pseudonym; raised once per case.
- telephone: subject "<local day>/<HH:MM>"; one per check time and day, only when the figure has a share.
- outbox: subject the device; cleared when the depth is back under half the threshold.
- dead letters: subject "burst"; cleared when the window holds fewer than the threshold, raised anew later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import Engine, func, select

from vardkoll.server.metrics.assessment import LIMIT_DAYS
from vardkoll.server.metrics.calendar import Period

from ..figures.loading import load_cases
from ..services import Services
from ..storage.job_tables import Alert
from ..storage.registry_tables import DeviceRow, UnitRow
from ..storage.tables import DeadLetter, UnitActivity
from .rules import AlertRules, all_effective_rules
from .store import (
    ASSESSMENT_AT_RISK,
    DEAD_LETTER_BURST,
    OUTBOX_GROWING,
    TELEPHONE_BELOW_TARGET,
    AlertRaised,
    clear_alerts,
    raise_alerts,
)


@dataclass
class CheckReport:
    raised: dict[str, int] = field(default_factory=dict)
    cleared: int = 0

    def add(self, kind: str, n: int) -> None:
        if n:
            self.raised[kind] = self.raised.get(kind, 0) + n


def run_checks(services: Services, now: datetime) -> CheckReport:
    report = CheckReport()
    with services.sessions() as session:
        with_data = set(session.scalars(select(UnitActivity.unit)))
        regions = dict(session.execute(select(UnitRow.unit, UnitRow.region)).all())
        dead_letter_units = set(session.scalars(select(DeadLetter.unit).where(DeadLetter.unit.is_not(None)).distinct()))
        device_units = set(session.scalars(select(DeviceRow.unit).distinct()))
        units = {unit: regions.get(unit) for unit in with_data | set(regions) | dead_letter_units | device_units}
        rules = all_effective_rules(session, units)
    for unit in sorted(units):
        unit_rules = rules[unit]
        if unit in with_data:
            report.add(ASSESSMENT_AT_RISK, cases_at_risk(services, unit, unit_rules, now))
            report.add(TELEPHONE_BELOW_TARGET, telephone_below_target(services, unit, unit_rules, now))
        raised, cleared = outboxes_growing(services, unit, unit_rules, now)
        report.add(OUTBOX_GROWING, raised)
        report.cleared += cleared
        raised, cleared = dead_letter_burst(services, unit, unit_rules, now)
        report.add(DEAD_LETTER_BURST, raised)
        report.cleared += cleared
    return report


def at_risk_days(now: datetime, hours: int, zone: tzinfo) -> Period | None:
    """Contact days whose deadline (end of day + 3) falls in (now, now + hours]."""
    local_now = now.astimezone(zone)
    first = local_now.date() - timedelta(days=LIMIT_DAYS)
    last = (local_now + timedelta(hours=hours)).date() - timedelta(days=LIMIT_DAYS)
    return Period(first, last) if first <= last else None


def cases_at_risk(services: Services, unit: str, rules: AlertRules, now: datetime) -> int:
    if rules.at_risk_hours <= 0:
        return 0
    config = services.units.config(unit)
    days = at_risk_days(now, rules.at_risk_hours, config.tz)
    if days is None:
        return 0
    horizon = now + timedelta(hours=rules.at_risk_hours)
    with services.sessions.begin() as session:
        ledger = load_cases(session, unit, days, None, config)
        alerts = [
            AlertRaised(
                unit,
                ASSESSMENT_AT_RISK,
                case.case,
                {
                    "contact_day": case.contact_day.isoformat(),
                    "deadline": case.deadline.isoformat(),
                    "hours_left": max(0, int((case.deadline - now).total_seconds() // 3600)),
                },
            )
            for case in ledger.open_cases(now, config)
            if now < case.deadline <= horizon
        ]
        return len(raise_alerts(session, alerts, now))


def telephone_below_target(services: Services, unit: str, rules: AlertRules, now: datetime) -> int:
    config = services.units.config(unit)
    local = now.astimezone(config.tz)
    due = [f"{local.date().isoformat()}/{moment.strftime('%H:%M')}" for moment in rules.telephone_check_times if moment <= local.time().replace(tzinfo=None)]
    if not due:
        return 0
    with services.sessions() as session:
        done = set(session.scalars(select(Alert.subject).where(Alert.unit == unit, Alert.kind == TELEPHONE_BELOW_TARGET, Alert.subject.in_(due))))
    # Checked once per time and day: what is due and not yet alerted is looked at now, the latest only.
    checked = _TELEPHONE_CHECKED.setdefault(services.engine, set())
    if due[-1] in done or (unit, due[-1]) in checked:
        return 0
    today = local.date()
    figure = services.figures.figure(unit, "telephone", Period(today, today), as_of=now)
    if len(checked) > 100_000:
        checked.clear()
    checked.add((unit, due[-1]))
    if figure["share"] is None or figure["meets_target"] is not False:
        return 0
    detail = {
        "day": today.isoformat(),
        "share": figure["share"],
        "target": figure["target"],
        "numerator": figure["numerator"],
        "denominator": figure["denominator"],
    }
    with services.sessions.begin() as session:
        return len(raise_alerts(session, [AlertRaised(unit, TELEPHONE_BELOW_TARGET, due[-1], detail)], now))


# The telephone check computes the figure at most once per (unit, time of day) per database in a process; the
# alert's unique key keeps a second process (after a lease handover) from alerting twice.
_TELEPHONE_CHECKED: WeakKeyDictionary[Engine, set[tuple[str, str]]] = WeakKeyDictionary()


def outbox_depth(last_status: str | None) -> int | None:
    """The outbox depth a collector's heartbeat reports, None when it reports none."""
    if not last_status:
        return None
    try:
        heartbeat = orjson.loads(last_status)
    except orjson.JSONDecodeError:
        return None
    outbox = heartbeat.get("outbox") if isinstance(heartbeat, dict) else None
    depth = outbox.get("depth") if isinstance(outbox, dict) else None
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else None


def outboxes_growing(services: Services, unit: str, rules: AlertRules, now: datetime) -> tuple[int, int]:
    threshold = rules.outbox_depth_at_least
    with services.sessions.begin() as session:
        rows = session.execute(select(DeviceRow.device, DeviceRow.last_status).where(DeviceRow.unit == unit, DeviceRow.retired_at.is_(None))).all()
        depths = {device: outbox_depth(status) for device, status in rows}
        deep = [
            AlertRaised(unit, OUTBOX_GROWING, device, {"depth": depth, "threshold": threshold})
            for device, depth in sorted(depths.items())
            if threshold > 0 and depth is not None and depth >= threshold
        ]
        drained = [device for device, depth in depths.items() if threshold <= 0 or depth is None or depth < threshold / 2]
        return len(raise_alerts(session, deep, now)), clear_alerts(session, unit, OUTBOX_GROWING, drained, now)


def dead_letter_burst(services: Services, unit: str, rules: AlertRules, now: datetime) -> tuple[int, int]:
    threshold = rules.dead_letters_at_least
    since = now - timedelta(minutes=rules.dead_letter_window_minutes)
    with services.sessions.begin() as session:
        count = session.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.unit == unit, DeadLetter.received_at > since)) or 0
        if threshold > 0 and count >= threshold:
            detail = {"dead_letters": count, "window_minutes": rules.dead_letter_window_minutes}
            return len(raise_alerts(session, [AlertRaised(unit, DEAD_LETTER_BURST, "burst", detail)], now)), 0
        return 0, clear_alerts(session, unit, DEAD_LETTER_BURST, ["burst"], now)
