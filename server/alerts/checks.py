"""The alert checks the rules add to the jobs' own (overdue cases, silent collectors, audit mismatches):
a 3-day case near its deadline, today's telephone figure under target at set local times, a collector's
outbox growing, a burst of dead letters. Each raises into the alerts table, where (unit, kind, subject)
is unique, so running a check twice raises nothing new. A pass reads what its units need in a few
statements per chunk of units (one transaction each), whatever the number of units: at a country's
1 200 units a check per unit and kind took about 10 000 statements and 3.4 s, every minute.

- at risk: subject the case pseudonym; raised once per case.
- telephone: subject "<local day>/<HH:MM>"; one per check time and day, only when the figure has a share.
- outbox: subject the device; cleared when the depth is back under half the threshold.
- dead letters: subject "burst"; cleared when the window holds fewer than the threshold, raised anew later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from vardkoll.server.metrics.assessment import LIMIT_DAYS
from vardkoll.server.metrics.calendar import Period

from ..figures.loading import load_cases_of
from ..services import Services
from ..storage.job_tables import Alert
from ..storage.one_of import one_of
from ..storage.registry_tables import DeviceRow, UnitRow
from ..storage.tables import DeadLetter, UnitActivity
from .rules import AlertRules, all_effective_rules
from .store import (
    ASSESSMENT_AT_RISK,
    DEAD_LETTER_BURST,
    OUTBOX_GROWING,
    TELEPHONE_BELOW_TARGET,
    AlertRaised,
    clear_alerts_of,
    open_subjects,
    raise_alerts,
)


CHUNK_UNITS = 500  # units per transaction: a pass's statements stay few, each transaction bounded


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
    ordered = sorted(units)
    for start in range(0, len(ordered), CHUNK_UNITS):
        chunk = ordered[start : start + CHUNK_UNITS]
        chunk_with_data = [unit for unit in chunk if unit in with_data]
        with services.sessions.begin() as session:
            alerts = cases_at_risk(services, session, chunk_with_data, rules, now)
            deep, drained = outboxes_growing(session, chunk, rules)
            bursts, calm = dead_letter_bursts(session, chunk, rules, now)
            # Only what is not open already is raised: raise_alerts runs one INSERT per alert, and a case at
            # risk stays wanted every minute until its deadline.
            open_now = open_subjects(session, chunk, (ASSESSMENT_AT_RISK, OUTBOX_GROWING, DEAD_LETTER_BURST))
            wanted = [alert for alert in (*alerts, *deep, *bursts) if (alert.unit, alert.kind, alert.subject) not in open_now]
            for alert in raise_alerts(session, wanted, now):
                report.add(alert.kind, 1)
            report.cleared += clear_where_open(session, open_now, {OUTBOX_GROWING: drained, DEAD_LETTER_BURST: calm}, now)
        report.add(TELEPHONE_BELOW_TARGET, telephones_below_target(services, chunk_with_data, rules, now))
    return report


def clear_where_open(session: Session, open_now: set[tuple[str, str, str]], clear: dict[str, list[tuple[str, str]]], now: datetime) -> int:
    """Clear those of the (unit, subject) per kind that have an open alert; an UPDATE only where one does."""
    return sum(
        clear_alerts_of(session, kind, [(unit, subject) for unit, subject in pairs if (unit, kind, subject) in open_now], now) for kind, pairs in clear.items()
    )


def at_risk_days(now: datetime, hours: int, zone: tzinfo) -> Period | None:
    """Contact days whose deadline (end of day + 3) falls in (now, now + hours]."""
    local_now = now.astimezone(zone)
    first = local_now.date() - timedelta(days=LIMIT_DAYS)
    last = (local_now + timedelta(hours=hours)).date() - timedelta(days=LIMIT_DAYS)
    return Period(first, last) if first <= last else None


def cases_at_risk(services: Services, session: Session, units: list[str], rules: dict[str, AlertRules], now: datetime) -> list[AlertRaised]:
    """The open cases of `units` whose deadline falls within each unit's `at_risk_hours`; the cases of
    units with the same contact days (same time zone and hours) are read in one query."""
    configs = {unit: services.units.config(unit) for unit in units}
    by_days: dict[Period, list[str]] = {}
    for unit in units:
        if rules[unit].at_risk_hours > 0 and (days := at_risk_days(now, rules[unit].at_risk_hours, configs[unit].tz)) is not None:
            by_days.setdefault(days, []).append(unit)
    alerts = []
    for days, members in by_days.items():
        ledgers = load_cases_of(session, members, days, None, configs)
        for unit in members:
            horizon = now + timedelta(hours=rules[unit].at_risk_hours)
            alerts += [
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
                for case in ledgers[unit].open_cases(now, configs[unit])
                if now < case.deadline <= horizon
            ]
    return alerts


def telephones_below_target(services: Services, units: list[str], rules: dict[str, AlertRules], now: datetime) -> int:
    """Today's telephone figure held to its target at each unit's latest check time passed, once per time
    and day: only the units not yet looked at for it (nor alerted) are read, one set of figures per day
    the units are on (time zones), and those under target raised in one transaction. A pass after a
    restart looks at every unit: one figure per unit was 1 200 figure calls at a country's units."""
    checked = _TELEPHONE_CHECKED.setdefault(services.engine, set())
    latest = {}
    for unit in units:
        local = now.astimezone(services.units.config(unit).tz)
        due = [moment for moment in rules[unit].telephone_check_times if moment <= local.time().replace(tzinfo=None)]
        if due and (unit, subject := f"{local.date().isoformat()}/{due[-1].strftime('%H:%M')}") not in checked:
            latest[unit] = subject
    if not latest:
        return 0
    with services.sessions() as session:
        query = select(Alert.unit, Alert.subject).where(
            one_of(Alert.unit, list(latest)), Alert.kind == TELEPHONE_BELOW_TARGET, one_of(Alert.subject, set(latest.values()))
        )
        done = {(unit, subject) for unit, subject in session.execute(query)}
    by_day: dict[date, list[str]] = {}
    for unit in latest:
        if (unit, latest[unit]) not in done:
            by_day.setdefault(now.astimezone(services.units.config(unit).tz).date(), []).append(unit)
    if len(checked) > 100_000:
        checked.clear()
    raised = []
    for today, day_units in by_day.items():
        # Not kept in this process's cache: figures as of a check time are asked once, and would push out
        # what the pages are using.
        figures = services.figures.figures(day_units, "telephone", Period(today, today), as_of=now, keep_in_memory=False)
        for unit, figure in zip(day_units, figures):
            if figure["share"] is not None and figure["meets_target"] is False:
                detail = {
                    "day": today.isoformat(),
                    "share": figure["share"],
                    "target": figure["target"],
                    "numerator": figure["numerator"],
                    "denominator": figure["denominator"],
                }
                raised.append(AlertRaised(unit, TELEPHONE_BELOW_TARGET, latest[unit], detail))
    count = 0
    if raised:
        with services.sessions.begin() as session:
            count = len(raise_alerts(session, raised, now))
    # Only once their alerts are committed: a failure before (another day's figures, the database) leaves
    # every unit of the pass to be looked at again, not checked with its alert never raised.
    checked.update((unit, latest[unit]) for day_units in by_day.values() for unit in day_units)
    return count


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


def outboxes_growing(session: Session, units: list[str], rules: dict[str, AlertRules]) -> tuple[list[AlertRaised], list[tuple[str, str]]]:
    """The alerts of the devices in service whose outbox is at least the unit's threshold, and the (unit,
    device) whose alert may clear: under half the threshold, no depth reported, or the check turned off."""
    rows = session.execute(select(DeviceRow.unit, DeviceRow.device, DeviceRow.last_status).where(one_of(DeviceRow.unit, units), DeviceRow.retired_at.is_(None)))
    deep, drained = [], []
    for unit, device, status in rows:
        threshold, depth = rules[unit].outbox_depth_at_least, outbox_depth(status)
        if threshold > 0 and depth is not None and depth >= threshold:
            deep.append(AlertRaised(unit, OUTBOX_GROWING, device, {"depth": depth, "threshold": threshold}))
        if threshold <= 0 or depth is None or depth < threshold / 2:
            drained.append((unit, device))
    return deep, drained


def dead_letter_bursts(session: Session, units: list[str], rules: dict[str, AlertRules], now: datetime) -> tuple[list[AlertRaised], list[tuple[str, str]]]:
    """The bursts (at least the unit's threshold of dead letters in its window), and the (unit, "burst")
    of every other unit; the units sharing a window are counted in one query."""
    by_window: dict[int, list[str]] = {}
    for unit in units:
        if rules[unit].dead_letters_at_least > 0:
            by_window.setdefault(rules[unit].dead_letter_window_minutes, []).append(unit)
    counts: dict[str, int] = {}
    for minutes, members in by_window.items():
        since = now - timedelta(minutes=minutes)
        query = select(DeadLetter.unit, func.count()).where(one_of(DeadLetter.unit, members), DeadLetter.received_at > since).group_by(DeadLetter.unit)
        counts.update((unit, count) for unit, count in session.execute(query))
    bursts, calm = [], []
    for unit in units:
        threshold, count = rules[unit].dead_letters_at_least, counts.get(unit, 0)
        if threshold > 0 and count >= threshold:
            bursts.append(AlertRaised(unit, DEAD_LETTER_BURST, "burst", {"dead_letters": count, "window_minutes": rules[unit].dead_letter_window_minutes}))
        else:
            calm.append((unit, "burst"))
    return bursts, calm
