"""The nightly self-audit re-computes yesterday's four figures from the raw events: on consistent data every
figure is ok; a row of metric state changed behind ingest's back is found, kept and alerted once."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, update

from vardkoll.server.jobs import AUDIT_MISMATCH, JobOutcome, JobRunner, JobSettings, audit_outcomes, recent_alerts
from vardkoll.server.jobs.self_audit import differences, run_self_audit
from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.services import Services
from vardkoll.server.storage.job_tables import AuditRow
from vardkoll.server.storage.tables import CallRow, CaseRow

from .jobs_support import UNIT, Clinic, FakeClock, local

DAY = date(2026, 3, 10)  # a Tuesday
AUDIT_TIME = local(DAY + timedelta(days=1), 3, 15)
LONG_AGO = local(date(2020, 1, 1))


def before(days: int = 0, months: int = 0, hour: int = 10):
    return local(DAY - timedelta(days=days + round(months * 30.4)), hour)


def ingest_a_day(c: Clinic) -> None:
    c.ingest(
        # telephone: answered; called back the same day; called back the next day (unknown at the end of
        # the day: pending); abandoned; rejected
        c.offered("call-answered", local(DAY, 8)),
        c.answered("call-answered", local(DAY, 8, 5)),
        c.offered("call-cb-same", local(DAY, 8, 10)),
        c.callback_booked("call-cb-same", local(DAY, 8, 11)),
        c.callback_done("call-cb-same", local(DAY, 14)),
        c.offered("call-cb-next", local(DAY, 9)),
        c.callback_booked("call-cb-next", local(DAY, 9, 1)),
        c.callback_done("call-cb-next", local(DAY + timedelta(days=1), 10)),
        c.offered("call-gave-up", local(DAY, 9, 30)),
        c.abandoned("call-gave-up", local(DAY, 9, 32)),
        c.rejected("call-rejected", local(DAY, 8, 1)),
        # assessment: in time, late, pending, and two cases from long before the 18 months (one still open)
        c.contact("case-in-time", before(days=2)),
        c.assessed("case-in-time", local(DAY, 10), profession="doctor"),
        c.contact("case-late-01", before(days=6)),
        c.assessed("case-late-01", local(DAY, 11)),
        c.contact("case-pending", local(DAY, 12)),
        c.contact("case-two-years-open", before(months=24)),
        c.contact("case-two-years-done", before(months=22)),
        c.assessed("case-two-years-done", local(DAY, 13)),
        # fixed doctor: today's snapshot, and an old one that no longer counts
        c.snapshot(before(months=20), listed=900, named_doctor=400),
        c.snapshot(local(DAY, 6), listed=1000, named_doctor=600),
        # continuity: p1 three visits within 18 months; p2 one visit before the window and three in it
        c.visit("patient-p1", "doctor-aaa", before(months=17)),
        c.visit("patient-p1", "doctor-bbb", before(months=1)),
        c.visit("patient-p1", "doctor-aaa", local(DAY, 9)),
        c.visit("patient-p2", "doctor-bbb", before(months=19)),
        c.visit("patient-p2", "doctor-aaa", before(months=2)),
        c.visit("patient-p2", "doctor-aaa", before(months=1)),
        c.visit("patient-p2", "doctor-aaa", local(DAY, 15)),
    )


def test_the_audit_of_consistent_data_is_ok_for_every_figure(services: Services, clinic: Clinic) -> None:
    ingest_a_day(clinic)
    stored = {m: services.figures.figure(UNIT, m, Period(DAY, DAY)) for m in METRICS}
    # The data exercise every figure (so "ok" means something):
    assert (stored["telephone"]["numerator"], stored["telephone"]["denominator"], stored["telephone"]["details"]["rejected"]) == (2, 4, 1)
    assert (stored["assessment"]["numerator"], stored["assessment"]["denominator"]) == (1, 3)
    assert stored["assessment"]["details"]["overdue_open"] == 1 and stored["assessment"]["details"]["pending"] == 1
    assert (stored["fixed_doctor"]["numerator"], stored["fixed_doctor"]["denominator"]) == (600, 1000)
    assert (stored["continuity"]["numerator"], stored["continuity"]["denominator"]) == (2, 2)
    assert stored["continuity"]["details"]["eligible_patients"] == 2

    outcomes = run_self_audit(services, AUDIT_TIME)
    assert [(o.unit, o.day, o.metric, o.ok, o.difference) for o in outcomes] == [(UNIT, DAY, m, True, {}) for m in METRICS]
    assert [(o.metric, o.ok) for o in audit_outcomes(services, UNIT, DAY)] == [(m, True) for m in METRICS]
    assert recent_alerts(services.sessions, UNIT, LONG_AGO) == []


def test_a_tampered_call_row_is_a_telephone_mismatch_kept_and_alerted_once(services: Services, clinic: Clinic) -> None:
    ingest_a_day(clinic)
    with services.sessions.begin() as session:
        session.execute(update(CallRow).where(CallRow.unit == UNIT, CallRow.call == "call-answered").values(answered=None))

    outcomes = {o.metric: o for o in run_self_audit(services, AUDIT_TIME)}
    assert {m: o.ok for m, o in outcomes.items()} == {"assessment": True, "continuity": True, "fixed_doctor": True, "telephone": False}
    difference = outcomes["telephone"].difference
    assert difference["numerator"] == {"stored": 1, "recomputed": 2}
    assert difference["details.answered"] == {"stored": 0, "recomputed": 1}
    assert difference["share"] == {"stored": 0.25, "recomputed": 0.5}

    with services.sessions() as session:
        row = session.scalars(select(AuditRow).where(AuditRow.metric == "telephone")).one()
        assert not row.ok and row.day == DAY and row.checked_at == AUDIT_TIME
    alerts = recent_alerts(services.sessions, UNIT, LONG_AGO, kind=AUDIT_MISMATCH)
    assert [(a.subject, a.detail["metric"], a.detail["day"]) for a in alerts] == [("2026-03-10/telephone", "telephone", "2026-03-10")]
    assert alerts[0].detail["difference"]["numerator"] == {"stored": 1, "recomputed": 2}

    run_self_audit(services, AUDIT_TIME + timedelta(minutes=5))  # audited again: the same row, no second alert
    assert len(recent_alerts(services.sessions, UNIT, LONG_AGO, kind=AUDIT_MISMATCH)) == 1
    with services.sessions() as session:
        assert len(session.scalars(select(AuditRow)).all()) == 4


def test_a_tampered_case_row_is_an_assessment_mismatch(services: Services, clinic: Clinic) -> None:
    ingest_a_day(clinic)
    with services.sessions.begin() as session:  # cancelled, though no event says so
        session.execute(update(CaseRow).where(CaseRow.case == "case-pending").values(cancelled=CaseRow.contact))
    outcomes = {o.metric: o for o in run_self_audit(services, AUDIT_TIME)}
    assert not outcomes["assessment"].ok and outcomes["telephone"].ok
    assert outcomes["assessment"].difference["details.pending"] == {"stored": 0, "recomputed": 1}


def test_the_nightly_job_audits_yesterday_in_the_units_time_zone(services: Services, clinic: Clinic) -> None:
    ingest_a_day(clinic)
    runner = JobRunner(services, JobSettings(), clock=FakeClock(AUDIT_TIME))
    assert runner.keep_lease()
    assert runner.run("self_audit") is JobOutcome.DONE
    assert [(o.day, o.ok) for o in audit_outcomes(services, UNIT, DAY - timedelta(days=5))] == [(DAY, True)] * 4


def test_differences_ignore_definition_version_and_data_and_name_nested_keys() -> None:
    stored = {"numerator": 1, "details": {"answered": 1, "by_profession": {}}, "definition_version": 1, "data": {"no_data": False}}
    recomputed = {"numerator": 1, "details": {"answered": 2, "by_profession": {"nurse": 1}}}
    assert differences(stored, recomputed) == {
        "details.answered": {"stored": 1, "recomputed": 2},
        "details.by_profession": {"stored": {}, "recomputed": None},
        "details.by_profession.nurse": {"stored": None, "recomputed": 1},
    }
