"""What one pass of the alert checks and one deadline sweep cost at a country's units (issue 18), set-based
against the per-unit loops they replaced, in one run on one database.

    .venv/bin/python bench/alert_jobs.py [--units 1200] [--rounds 3] [--postgres]

Each unit (Europe/Stockholm, default rules) holds a few cases: two contacted three days ago and open (at
risk: due at the end of today), one contacted four days ago and open (overdue since last midnight), two
assessed in time. Every unit has a collector whose heartbeat reports its outbox (every tenth one 800
deep), and every twentieth unit 25 dead letters in the last five minutes. The passes run at 08:00 local
on 7 Dec 2026, before the first telephone check time (as most minutes are; at a check time each unit's
telephone figure is computed once, in both ways).

Timed, per round, the two ways alternating who goes first, each after the alerts and sweep marks are
deleted: a first check pass (alerts to raise), a second one a minute later (nothing new: the every-minute
case), a third 11 minutes on after the deep outboxes drained (the outbox and dead-letter alerts clear), a
first sweep (no marks), and a sweep after every unit's data version moved. Then the telephone check
alone at 10:05, after the 10:00 check time, as the first pass after a restart meets it (every unit
looked at; the units have no calls, so each figure has no share and nothing is raised): one figure per
unit, as until the afternoon of 7 Dec 2026, against one call for all. Printed: ms and SQL statements of
each, the median of the rounds, and the ratio new/old.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Callable
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import delete, event, func, select, update

from bench_common import machine, throwaway_postgres

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TODAY = date(2026, 12, 7)
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=STOCKHOLM)
TELEPHONE_AT = datetime(2026, 12, 7, 10, 5, tzinfo=STOCKHOLM)
LATE_WINDOW = timedelta(days=3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster (default: a SQLite file)")
    args = parser.parse_args()

    from vardkoll.server.alerts.checks import run_checks
    from vardkoll.server.jobs.deadline_sweep import sweep_deadlines
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings

    with ExitStack() as stack:
        if args.postgres:
            url = stack.enter_context(throwaway_postgres())
        else:
            url = f"sqlite:///{Path(stack.enter_context(TemporaryDirectory(prefix='vardkoll-alert-jobs-'))) / 'bench.sqlite'}"
        services = build_services(ServerSettings(database_url=url), apply_migrations=True)
        started = time.perf_counter()
        prepare(services, args.units)
        print(machine())
        print(f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.units} units (prepared in {time.perf_counter() - started:.0f} s), {args.rounds} rounds")
        ways: dict[str, dict[str, Callable[[Any, datetime], Any]]] = {
            "old": {"checks": old_run_checks, "sweep": old_sweep_deadlines, "telephone": old_telephones},
            "new": {"checks": run_checks, "sweep": lambda s, now: sweep_deadlines(s, now, LATE_WINDOW), "telephone": new_telephones},
        }
        results: dict[tuple[str, str], list[tuple[float, int, Any]]] = {}
        for number in range(args.rounds):
            for way in ("old", "new") if number % 2 == 0 else ("new", "old"):
                reset(services, args.units)
                steps = (
                    ("checks, first pass", "checks", NOW),
                    ("checks, a minute later", "checks", NOW + timedelta(minutes=1)),
                    ("checks, drained, 11 min on", "checks", NOW + timedelta(minutes=11)),
                    ("sweep, first", "sweep", NOW),
                    ("sweep, every unit changed", "sweep", NOW + timedelta(minutes=1)),
                    ("telephone check, 10:05", "telephone", TELEPHONE_AT),
                )
                for label, job, now in steps:
                    if label == "checks, drained, 11 min on":
                        set_deep_outboxes(services, args.units, 3)
                    if label == "sweep, every unit changed":
                        move_every_data_version(services)
                    results.setdefault((label, way), []).append(timed(services, lambda: ways[way][job](services, now)))
        print(f"\n{'pass':<28}{'old ms':>10}{'new ms':>10}{'new/old':>9}{'old stmts':>11}{'new stmts':>11}  outcome (old | new)")
        for label in (
            "checks, first pass",
            "checks, a minute later",
            "checks, drained, 11 min on",
            "sweep, first",
            "sweep, every unit changed",
            "telephone check, 10:05",
        ):
            old, new = results[label, "old"], results[label, "new"]
            old_ms, new_ms = statistics.median(r[0] for r in old), statistics.median(r[0] for r in new)
            print(
                f"{label:<28}{old_ms:>10.0f}{new_ms:>10.1f}{new_ms / old_ms:>9.3f}{old[0][1]:>11}{new[0][1]:>11}  {outcome(old[0][2])} | {outcome(new[0][2])}"
            )
        services.engine.dispose()
    return 0


def outcome(result: Any) -> str:
    return str(result) if isinstance(result, int) else f"{result.raised} cleared {result.cleared}"


def timed(services: Any, call: Callable[[], Any]) -> tuple[float, int, Any]:
    """(ms, statements, result) of one call."""
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        result = call()
        return (time.perf_counter() - started) * 1000, statements, result
    finally:
        event.remove(services.engine, "before_cursor_execute", count)


def prepare(services: Any, units: int) -> None:
    from vardkoll.protocol import CareAssessed, CareContact
    from vardkoll.server.ingest.service import Source
    from vardkoll.server.storage.registry_tables import DeviceRow, UnitRow
    from vardkoll.server.storage.tables import DeadLetter

    names = [f"SE2321000016-B{n:04d}" for n in range(units)]
    with services.sessions.begin() as session:
        for n, unit in enumerate(names):
            session.add(UnitRow(unit=unit, name=f"Vårdcentralen {n:04d}", region=f"Region {n % 21:02d}", time_zone="Europe/Stockholm"))
            depth = 800 if n % 10 == 0 else 3
            heartbeat = orjson.dumps({"outbox": {"depth": depth}}).decode()
            session.add(DeviceRow(unit=unit, device=f"pi-{n:04d}", registered_at=NOW, status="online", last_seen_at=NOW, last_status=heartbeat))
            if n % 20 == 0:
                session.add_all(DeadLetter(received_at=NOW - timedelta(minutes=5), source="mqtt", unit=unit, reason="bench") for _ in range(25))
    services.units.invalidate()

    def at(days_ago: int, hour: int) -> datetime:
        return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time().replace(hour=hour), tzinfo=STOCKHOLM)

    for start in range(0, units, 100):
        events: list[Any] = []
        for unit in names[start : start + 100]:
            ids = iter(range(100))

            def base(when: datetime, unit: str = unit, ids: Any = ids) -> dict[str, Any]:
                return {"v": 1, "id": f"ev-{unit[-5:]}-{next(ids):03d}", "unit": unit, "at": when}

            for case, days_ago in (("risk-1", 3), ("risk-2", 3), ("overdue", 4), ("in-time-1", 2), ("in-time-2", 1)):
                events.append(CareContact(**base(at(days_ago, 9)), case=f"case-{unit[-5:]}-{case}", listed=True, channel="phone"))
                if case.startswith("in-time"):
                    events.append(CareAssessed(**base(at(0, 7)), case=f"case-{unit[-5:]}-{case}", profession="nurse", form="phone"))
        report = services.ingest.ingest(events, Source("http"), received_at=NOW)
        assert not report.rejected, report.rejected


def reset(services: Any, units: int) -> None:
    from vardkoll.server.storage.job_tables import Alert, SweepMark

    with services.sessions.begin() as session:
        session.execute(delete(Alert))
        session.execute(delete(SweepMark))
    set_deep_outboxes(services, units, 800)


def set_deep_outboxes(services: Any, units: int, depth: int) -> None:
    """The outbox depth of every tenth unit's collector."""
    from vardkoll.server.storage.registry_tables import DeviceRow

    with services.sessions.begin() as session:
        deep = [f"pi-{n:04d}" for n in range(0, units, 10)]
        session.execute(update(DeviceRow).where(DeviceRow.device.in_(deep)).values(last_status=orjson.dumps({"outbox": {"depth": depth}}).decode()))


def move_every_data_version(services: Any) -> None:
    from vardkoll.server.storage.tables import UnitActivity

    with services.sessions.begin() as session:
        session.execute(update(UnitActivity).values(version=UnitActivity.version + 1))


# The per-unit loops as they were before 7 Dec 2026 (server/alerts/checks.py and server/jobs/deadline_sweep.py
# at be49182), on the same store functions: the baseline. The telephone check is left out of the passes:
# before the first check time it returned before any statement, as it does now; it is timed alone below.


def _telephone_rules(services: Any) -> tuple[list[str], dict[str, Any]]:
    from vardkoll.server.alerts.checks import _TELEPHONE_CHECKED
    from vardkoll.server.alerts.rules import all_effective_rules
    from vardkoll.server.storage.registry_tables import UnitRow

    _TELEPHONE_CHECKED.pop(services.engine, None)  # as in a fresh process: every unit is looked at
    with services.sessions() as session:
        units = dict(session.execute(select(UnitRow.unit, UnitRow.region)).all())
        return sorted(units), all_effective_rules(session, units)


def new_telephones(services: Any, now: datetime) -> int:
    from vardkoll.server.alerts.checks import telephones_below_target

    units, rules = _telephone_rules(services)
    return telephones_below_target(services, units, rules, now)


def old_telephones(services: Any, now: datetime) -> int:
    """The check as it was at e142c9d: the due units found the same way, then one figure (and, under
    target, one transaction) per unit."""
    from vardkoll.server.alerts.store import TELEPHONE_BELOW_TARGET, AlertRaised, raise_alerts
    from vardkoll.server.metrics import Period
    from vardkoll.server.storage.job_tables import Alert
    from vardkoll.server.storage.one_of import one_of

    units, rules = _telephone_rules(services)
    latest = {}
    for unit in units:
        local = now.astimezone(services.units.config(unit).tz)
        due = [moment for moment in rules[unit].telephone_check_times if moment <= local.time().replace(tzinfo=None)]
        if due:
            latest[unit] = f"{local.date().isoformat()}/{due[-1].strftime('%H:%M')}"
    with services.sessions() as session:
        query = select(Alert.unit, Alert.subject).where(
            one_of(Alert.unit, list(latest)), Alert.kind == TELEPHONE_BELOW_TARGET, one_of(Alert.subject, set(latest.values()))
        )
        done = {(unit, subject) for unit, subject in session.execute(query)}
    raised = 0
    for unit, subject in latest.items():
        if (unit, subject) in done:
            continue
        today = now.astimezone(services.units.config(unit).tz).date()
        figure = services.figures.figure(unit, "telephone", Period(today, today), as_of=now)
        if figure["share"] is not None and figure["meets_target"] is False:
            detail = {key: figure[key] for key in ("share", "target", "numerator", "denominator")} | {"day": today.isoformat()}
            with services.sessions.begin() as session:
                raised += len(raise_alerts(session, [AlertRaised(unit, TELEPHONE_BELOW_TARGET, subject, detail)], now))
    return raised


def old_run_checks(services: Any, now: datetime) -> Any:
    from vardkoll.server.alerts.checks import CheckReport
    from vardkoll.server.alerts.rules import all_effective_rules
    from vardkoll.server.alerts.store import ASSESSMENT_AT_RISK, DEAD_LETTER_BURST, OUTBOX_GROWING
    from vardkoll.server.storage.registry_tables import DeviceRow, UnitRow
    from vardkoll.server.storage.tables import DeadLetter, UnitActivity

    report = CheckReport()
    with services.sessions() as session:
        with_data = set(session.scalars(select(UnitActivity.unit)))
        regions = dict(session.execute(select(UnitRow.unit, UnitRow.region)).all())
        dead_letter_units = set(session.scalars(select(DeadLetter.unit).where(DeadLetter.unit.is_not(None)).distinct()))
        device_units = set(session.scalars(select(DeviceRow.unit).distinct()))
        units = {unit: regions.get(unit) for unit in with_data | set(regions) | dead_letter_units | device_units}
        rules = all_effective_rules(session, units)
    for unit in sorted(units):
        if unit in with_data:
            report.add(ASSESSMENT_AT_RISK, _old_cases_at_risk(services, unit, rules[unit], now))
        raised, cleared = _old_outboxes_growing(services, unit, rules[unit], now)
        report.add(OUTBOX_GROWING, raised)
        report.cleared += cleared
        raised, cleared = _old_dead_letter_burst(services, unit, rules[unit], now)
        report.add(DEAD_LETTER_BURST, raised)
        report.cleared += cleared
    return report


def _old_cases_at_risk(services: Any, unit: str, rules: Any, now: datetime) -> int:
    from vardkoll.server.alerts.checks import at_risk_days
    from vardkoll.server.alerts.store import ASSESSMENT_AT_RISK, AlertRaised, raise_alerts
    from vardkoll.server.figures.loading import load_cases

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


def _old_outboxes_growing(services: Any, unit: str, rules: Any, now: datetime) -> tuple[int, int]:
    from vardkoll.server.alerts.checks import outbox_depth
    from vardkoll.server.alerts.store import OUTBOX_GROWING, AlertRaised, clear_alerts, raise_alerts
    from vardkoll.server.storage.registry_tables import DeviceRow

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


def _old_dead_letter_burst(services: Any, unit: str, rules: Any, now: datetime) -> tuple[int, int]:
    from vardkoll.server.alerts.store import DEAD_LETTER_BURST, AlertRaised, clear_alerts, raise_alerts
    from vardkoll.server.storage.tables import DeadLetter

    threshold = rules.dead_letters_at_least
    since = now - timedelta(minutes=rules.dead_letter_window_minutes)
    with services.sessions.begin() as session:
        count = session.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.unit == unit, DeadLetter.received_at > since)) or 0
        if threshold > 0 and count >= threshold:
            detail = {"dead_letters": count, "window_minutes": rules.dead_letter_window_minutes}
            return len(raise_alerts(session, [AlertRaised(unit, DEAD_LETTER_BURST, "burst", detail)], now)), 0
        return 0, clear_alerts(session, unit, DEAD_LETTER_BURST, ["burst"], now)


def old_sweep_deadlines(services: Any, now: datetime) -> int:
    from vardkoll.server.alerts.store import ASSESSMENT_OVERDUE, AlertRaised, raise_alerts
    from vardkoll.server.figures.loading import load_cases
    from vardkoll.server.jobs.deadline_sweep import _nothing_changed, contact_days_due, newly_overdue
    from vardkoll.server.storage.job_tables import SweepMark
    from vardkoll.server.storage.tables import UnitActivity
    from vardkoll.server.storage.upsert import dialect_insert

    with services.sessions() as session:
        versions = dict(session.execute(select(UnitActivity.unit, UnitActivity.version)).all())
        marks = {mark.unit: mark for mark in session.scalars(select(SweepMark))}
    raised = 0
    for unit in sorted(versions):
        config, mark, version = services.units.config(unit), marks.get(unit), versions[unit]
        if mark is not None and _nothing_changed(mark, version, now, config):
            continue
        since = now - LATE_WINDOW if mark is None else min(mark.swept_at, now - LATE_WINDOW)
        days = contact_days_due(since, now, config)
        with services.sessions.begin() as session:
            alerts = []
            if days is not None:
                ledger = load_cases(session, unit, days, None, config)
                alerts = [
                    AlertRaised(unit, ASSESSMENT_OVERDUE, overdue.case, {"contact_day": overdue.contact_day, "deadline": overdue.deadline.isoformat()})
                    for overdue in newly_overdue(ledger, since, now, config)
                ]
            raised += len(raise_alerts(session, alerts, now))
            stmt = dialect_insert(session, SweepMark.__table__).values(unit=unit, swept_at=now, data_version=version)
            session.execute(stmt.on_conflict_do_update(index_elements=["unit"], set_={"swept_at": now, "data_version": version}))
    return raised


if __name__ == "__main__":
    raise SystemExit(main())
