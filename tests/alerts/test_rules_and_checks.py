"""The alert checks against hand-worked cases: which case is at risk, when the telephone figure is held to its
target, a growing outbox, a burst of dead letters; and the rules that change them per region and unit."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import orjson
from sqlalchemy import select

from vardkoll.server.alerts.checks import run_checks
from vardkoll.server.alerts.rules import AlertRulesPatch, effective_rules, set_overrides
from vardkoll.server.alerts.store import ASSESSMENT_AT_RISK, DEAD_LETTER_BURST, OUTBOX_GROWING, TELEPHONE_BELOW_TARGET
from vardkoll.server.services import Services
from vardkoll.server.storage.job_tables import Alert
from vardkoll.server.storage.registry_tables import DeviceRow
from vardkoll.server.storage.tables import DeadLetter

from jobs.jobs_support import UNIT, Clinic, local

TODAY = date(2026, 3, 10)  # a Tuesday, winter time (UTC+1)


def alerts(services: Services, kind: str) -> dict[str, dict]:
    with services.sessions() as session:
        return {a.subject: orjson.loads(a.detail) for a in session.scalars(select(Alert).where(Alert.kind == kind, Alert.cleared_at.is_(None)))}


def override(services: Services, scope, key: str, **fields) -> None:
    with services.sessions.begin() as session:
        set_overrides(session, scope, key, AlertRulesPatch(**fields), "test", datetime.now(timezone.utc))


def test_a_case_whose_deadline_is_within_24_hours_is_at_risk_once(services: Services, clinic: Clinic) -> None:
    now = local(TODAY, 8, 0)
    clinic.ingest(
        clinic.contact("case-due-today", local(TODAY - timedelta(days=3), 9)),  # deadline the last instant of today: 15 full hours left
        clinic.contact("case-assessed", local(TODAY - timedelta(days=3), 9)),
        clinic.assessed("case-assessed", local(TODAY - timedelta(days=1), 9)),
        clinic.contact("case-due-tomorrow", local(TODAY - timedelta(days=2), 9)),  # deadline tomorrow 24:00: 40 h left
        clinic.contact("case-overdue", local(TODAY - timedelta(days=4), 9)),  # past: the deadline sweep's, not this check's
    )
    run_checks(services, now)
    at_risk = alerts(services, ASSESSMENT_AT_RISK)
    assert set(at_risk) == {"case-due-today"}
    assert at_risk["case-due-today"]["hours_left"] == 15 and at_risk["case-due-today"]["contact_day"] == "2026-03-07"
    assert run_checks(services, now + timedelta(minutes=1)).raised.get(ASSESSMENT_AT_RISK, 0) == 0, "alerted once"

    override(services, "region", "Test", at_risk_hours=48)  # the region widens it: tomorrow's case too
    run_checks(services, now + timedelta(minutes=2))
    assert set(alerts(services, ASSESSMENT_AT_RISK)) == {"case-due-today", "case-due-tomorrow"}
    override(services, "unit", UNIT, at_risk_hours=0)  # the unit turns it off
    with services.sessions() as session:
        assert effective_rules(session, UNIT, "Test").at_risk_hours == 0
        override(services, "unit", UNIT, at_risk_hours=None)  # null: inherit the region's again
        assert effective_rules(session, UNIT, "Test").at_risk_hours == 48


def test_todays_telephone_figure_is_held_to_its_target_at_the_set_times(services: Services, clinic: Clinic) -> None:
    clinic.ingest(
        clinic.offered("call-1", local(TODAY, 8, 5)),
        clinic.answered("call-1", local(TODAY, 8, 6)),
        clinic.offered("call-2", local(TODAY, 8, 10)),
        clinic.abandoned("call-2", local(TODAY, 8, 11)),
    )
    run_checks(services, local(TODAY, 9, 59))
    assert alerts(services, TELEPHONE_BELOW_TARGET) == {}, "not before 10:00"
    run_checks(services, local(TODAY, 10, 1))
    # 1 of 2 offered calls answered: 0.5 against the default target 0.9.
    assert alerts(services, TELEPHONE_BELOW_TARGET) == {
        "2026-03-10/10:00": {"day": "2026-03-10", "share": 0.5, "target": 0.9, "numerator": 1, "denominator": 2}
    }
    run_checks(services, local(TODAY, 10, 2))
    assert len(alerts(services, TELEPHONE_BELOW_TARGET)) == 1, "once per check time"


def test_a_growing_outbox_and_a_burst_of_dead_letters_alert_and_clear(services: Services, clinic: Clinic) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    with services.sessions.begin() as session:
        session.add(
            DeviceRow(
                unit=UNIT, device="pi-deep", registered_at=now, status="online", last_seen_at=now, last_status=orjson.dumps({"outbox": {"depth": 800}}).decode()
            )
        )
        session.add(
            DeviceRow(
                unit=UNIT, device="pi-fine", registered_at=now, status="online", last_seen_at=now, last_status=orjson.dumps({"outbox": {"depth": 3}}).decode()
            )
        )
        session.add_all([DeadLetter(received_at=now - timedelta(minutes=i % 9), source="mqtt", unit=UNIT, reason="bad") for i in range(20)])
    run_checks(services, now)
    assert alerts(services, OUTBOX_GROWING) == {"pi-deep": {"depth": 800, "threshold": 500}}
    assert alerts(services, DEAD_LETTER_BURST) == {"burst": {"dead_letters": 20, "window_minutes": 10}}
    with services.sessions.begin() as session:
        session.get(DeviceRow, (UNIT, "pi-deep")).last_status = orjson.dumps({"outbox": {"depth": 200}}).decode()
    run_checks(services, now + timedelta(minutes=11))  # under half the threshold; the dead letters are older than 10 minutes
    assert alerts(services, OUTBOX_GROWING) == {} and alerts(services, DEAD_LETTER_BURST) == {}


def test_rules_refuse_what_makes_no_sense() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at_risk_hours"):
        AlertRulesPatch(at_risk_hours=-1)
    assert AlertRulesPatch(telephone_check_times=["09:30"]).telephone_check_times == [time(9, 30)]
