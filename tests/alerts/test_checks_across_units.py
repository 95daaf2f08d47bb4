"""The alert checks of many units in one pass: each unit held to its own rules and time zone, and a pass
that runs as many statements for 50 units as for 5.

Hand-worked, Tuesday 10 March 2026, the pass at 08:00 in Stockholm (07:00 UTC, 09:00 in Helsinki):
- A (Stockholm, default rules): a case contacted Saturday 7 March is due at the end of today, 15 full
  hours left; an outbox of 800 (threshold 500); 20 dead letters in the last 10 minutes.
- B (Helsinki; at risk 48 h, outbox 100, 5 dead letters in 30 minutes): a case contacted Sunday 8 March
  is due at the end of Wednesday, Helsinki time, 38 full hours left; an outbox of 150; 5 dead letters 20
  minutes ago (outside a 10-minute window, inside B's 30).
- C (Stockholm; at risk and dead letters off): a case due today raises nothing, nor do 25 dead letters;
  two outboxes of 800 alert.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import select

from vardkoll.server.alerts import checks
from vardkoll.server.alerts.checks import run_checks
from vardkoll.server.alerts.rules import AlertRulesPatch, set_overrides
from vardkoll.server.alerts.store import ASSESSMENT_AT_RISK, DEAD_LETTER_BURST, OUTBOX_GROWING, TELEPHONE_BELOW_TARGET
from vardkoll.server.services import Services
from vardkoll.server.storage.job_tables import Alert
from vardkoll.server.storage.registry_tables import DeviceRow
from vardkoll.server.storage.tables import DeadLetter

from jobs.jobs_support import STOCKHOLM, Clinic, local, register_unit, statements_counted

TODAY = date(2026, 3, 10)
HELSINKI = ZoneInfo("Europe/Helsinki")
A, B, C = "SE2321000016-A001", "SE2321000016-B002", "SE2321000016-C003"


def open_alerts(services: Services) -> dict[tuple[str, str, str], dict]:
    with services.sessions() as session:
        rows = session.scalars(select(Alert).where(Alert.cleared_at.is_(None)))
        return {(a.unit, a.kind, a.subject): orjson.loads(a.detail) for a in rows}


def add_device(services: Services, unit: str, device: str, depth: int) -> None:
    now = datetime(2026, 3, 10, 7, 0, tzinfo=timezone.utc)
    with services.sessions.begin() as session:
        heartbeat = orjson.dumps({"outbox": {"depth": depth}}).decode()
        session.add(DeviceRow(unit=unit, device=device, registered_at=now, status="online", last_seen_at=now, last_status=heartbeat))


def add_dead_letters(services: Services, unit: str, n: int, at: datetime) -> None:
    with services.sessions.begin() as session:
        session.add_all([DeadLetter(received_at=at, source="mqtt", unit=unit, reason="bad") for _ in range(n)])


def set_unit_rules(services: Services, unit: str, **fields) -> None:
    with services.sessions.begin() as session:
        set_overrides(session, "unit", unit, AlertRulesPatch(**fields), "test", datetime(2026, 3, 1, tzinfo=timezone.utc))


def test_each_unit_is_checked_by_its_own_rules_and_clock(services: Services) -> None:
    now = local(TODAY, 8, 0)
    for unit, zone in ((A, "Europe/Stockholm"), (B, "Europe/Helsinki"), (C, "Europe/Stockholm")):
        register_unit(services, unit, zone)
    a, b, c = Clinic(services, A), Clinic(services, B), Clinic(services, C)
    a.ingest(a.contact("case-a-due-today", local(date(2026, 3, 7), 9)))
    b.ingest(b.contact("case-b-due-wednesday", local(date(2026, 3, 8), 9, tz=HELSINKI)))
    c.ingest(c.contact("case-c-due-today", local(date(2026, 3, 7), 9)))
    set_unit_rules(services, B, at_risk_hours=48, outbox_depth_at_least=100, dead_letters_at_least=5, dead_letter_window_minutes=30)
    set_unit_rules(services, C, at_risk_hours=0, dead_letters_at_least=0)
    add_device(services, A, "pi-a1", 800)
    add_device(services, B, "pi-b1", 150)
    add_device(services, C, "pi-c1", 800)
    add_device(services, C, "pi-c2", 800)
    add_dead_letters(services, A, 20, now - timedelta(minutes=5))
    add_dead_letters(services, B, 5, now - timedelta(minutes=20))
    add_dead_letters(services, C, 25, now - timedelta(minutes=5))

    report = run_checks(services, now)
    assert open_alerts(services) == {
        (A, ASSESSMENT_AT_RISK, "case-a-due-today"): {"contact_day": "2026-03-07", "deadline": "2026-03-10T23:59:59.999999+01:00", "hours_left": 15},
        (B, ASSESSMENT_AT_RISK, "case-b-due-wednesday"): {"contact_day": "2026-03-08", "deadline": "2026-03-11T23:59:59.999999+02:00", "hours_left": 38},
        (A, OUTBOX_GROWING, "pi-a1"): {"depth": 800, "threshold": 500},
        (B, OUTBOX_GROWING, "pi-b1"): {"depth": 150, "threshold": 100},
        (C, OUTBOX_GROWING, "pi-c1"): {"depth": 800, "threshold": 500},
        (C, OUTBOX_GROWING, "pi-c2"): {"depth": 800, "threshold": 500},
        (A, DEAD_LETTER_BURST, "burst"): {"dead_letters": 20, "window_minutes": 10},
        (B, DEAD_LETTER_BURST, "burst"): {"dead_letters": 5, "window_minutes": 30},
    }
    assert (report.raised, report.cleared) == ({ASSESSMENT_AT_RISK: 2, OUTBOX_GROWING: 4, DEAD_LETTER_BURST: 2}, 0)

    # 31 minutes on, every dead letter is outside its unit's window; C's second outbox has drained under
    # half its threshold (200 < 250), A's first is still deep and stays open without being raised again.
    with services.sessions.begin() as session:
        session.get(DeviceRow, (C, "pi-c2")).last_status = orjson.dumps({"outbox": {"depth": 200}}).decode()
    report = run_checks(services, now + timedelta(minutes=31))
    assert (report.raised, report.cleared) == ({}, 3)
    assert {key for key in open_alerts(services) if key[1] in (OUTBOX_GROWING, DEAD_LETTER_BURST)} == {
        (A, OUTBOX_GROWING, "pi-a1"),
        (B, OUTBOX_GROWING, "pi-b1"),
        (C, OUTBOX_GROWING, "pi-c1"),
    }

    # 09:30 in Stockholm is 10:30 in Helsinki: only B's 10:00 telephone check is due (1 of 2 calls answered).
    for clinic, zone in ((a, STOCKHOLM), (b, HELSINKI)):
        first, second = f"call-{clinic.unit[-4:]}-1", f"call-{clinic.unit[-4:]}-2"
        clinic.ingest(
            clinic.offered(first, local(TODAY, 8, 5, tz=zone)),
            clinic.answered(first, local(TODAY, 8, 6, tz=zone)),
            clinic.offered(second, local(TODAY, 8, 10, tz=zone)),
            clinic.abandoned(second, local(TODAY, 8, 11, tz=zone)),
        )
    report = run_checks(services, local(TODAY, 9, 30))
    assert report.raised == {TELEPHONE_BELOW_TARGET: 1}
    assert {key: detail for key, detail in open_alerts(services).items() if key[1] == TELEPHONE_BELOW_TARGET} == {
        (B, TELEPHONE_BELOW_TARGET, "2026-03-10/10:00"): {"day": "2026-03-10", "share": 0.5, "target": 0.9, "numerator": 1, "denominator": 2}
    }


def add_quiet_units(services: Services, units: list[str], now: datetime) -> None:
    """Units with data, a device and a dead letter, and nothing to alert: a case assessed in time, a
    shallow outbox, one dead letter in the window."""
    for unit in units:
        register_unit(services, unit)
        clinic = Clinic(services, unit)
        clinic.ingest(clinic.contact(f"case-{unit[-4:]}", local(TODAY - timedelta(days=2), 9)), clinic.assessed(f"case-{unit[-4:]}", local(TODAY, 7)))
        add_device(services, unit, f"pi-{unit[-4:]}", 3)
        add_dead_letters(services, unit, 1, now - timedelta(minutes=1))


def test_a_pass_runs_as_many_statements_for_50_units_as_for_5(services: Services) -> None:
    now = local(TODAY, 8, 0)  # before the first telephone check time
    units = [f"SE2321000016-Q{n:03d}" for n in range(50)]
    add_quiet_units(services, units[:5], now)
    with statements_counted(services) as for_5:
        assert run_checks(services, now).raised == {}
    add_quiet_units(services, units[5:], now)
    with statements_counted(services) as for_50:
        assert run_checks(services, now + timedelta(minutes=1)).raised == {}
    assert len(for_50) == len(for_5), (for_5, for_50)


def test_the_telephone_check_runs_as_many_statements_for_50_units_as_for_5(services: Services) -> None:
    # After a restart every unit is looked at for the check time passed: at a country's units that was one
    # figure, and its statements, per unit. Every call here is answered, so nothing is raised.
    now = local(TODAY, 10, 5)
    units = [f"SE2321000016-T{n:03d}" for n in range(50)]

    def add_answering_units(chosen: list[str]) -> None:
        for unit in chosen:
            register_unit(services, unit)
            clinic = Clinic(services, unit)
            call = f"call-{unit[-4:]}"
            clinic.ingest(clinic.offered(call, local(TODAY, 8, 5)), clinic.answered(call, local(TODAY, 8, 6)))

    add_answering_units(units[:5])
    with statements_counted(services) as for_5:
        assert run_checks(services, now).raised == {}
    add_answering_units(units[5:])
    with statements_counted(services) as for_50:
        assert run_checks(services, now + timedelta(minutes=1)).raised == {}
    assert len(for_50) == len(for_5), (for_5, for_50)


def test_a_telephone_alert_that_could_not_be_written_is_raised_by_the_next_pass(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    # A (Stockholm) answered 1 of 2 calls by 10:00, under the default target of 0.9. The first pass's
    # write fails (the database went away): the unit must not count as looked at for 10:00.
    register_unit(services, A)
    a = Clinic(services, A)
    a.ingest(
        a.offered("call-a-1", local(TODAY, 8, 5)),
        a.answered("call-a-1", local(TODAY, 8, 6)),
        a.offered("call-a-2", local(TODAY, 8, 10)),
        a.abandoned("call-a-2", local(TODAY, 8, 11)),
    )
    real_raise = checks.raise_alerts

    def database_away(session, alerts, now):
        if any(alert.kind == TELEPHONE_BELOW_TARGET for alert in alerts):
            raise RuntimeError("database away")
        return real_raise(session, alerts, now)

    monkeypatch.setattr(checks, "raise_alerts", database_away)
    with pytest.raises(RuntimeError):
        run_checks(services, local(TODAY, 10, 5))
    monkeypatch.setattr(checks, "raise_alerts", real_raise)

    assert run_checks(services, local(TODAY, 10, 6)).raised == {TELEPHONE_BELOW_TARGET: 1}
    assert {key: detail for key, detail in open_alerts(services).items() if key[1] == TELEPHONE_BELOW_TARGET} == {
        (A, TELEPHONE_BELOW_TARGET, "2026-03-10/10:00"): {"day": "2026-03-10", "share": 0.5, "target": 0.9, "numerator": 1, "denominator": 2}
    }
