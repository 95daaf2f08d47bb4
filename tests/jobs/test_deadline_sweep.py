"""The deadline sweep alerts each in-scope open case once, when it passes the end of its contact day + 3
(local), and never a case that is pending, assessed in time, excluded, unlisted or cancelled.

Hand-worked, unit in Europe/Stockholm (UTC+1 in early March). Contacts on Monday 2 March 2026 have
their deadline at the end of Thursday 5 March, local; contacts on 3 March at the end of 6 March.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from vardkoll.server.jobs import ASSESSMENT_OVERDUE, JobOutcome, JobRunner, JobSettings, recent_alerts
from vardkoll.server.jobs.deadline_sweep import sweep_deadlines
from vardkoll.server.metrics import Period
from vardkoll.server.services import Services
from vardkoll.server.storage.job_tables import Alert

from .jobs_support import UNIT, Clinic, FakeClock, local, register_unit

MON, TUE, WED, THU, FRI, SAT = (date(2026, 3, d) for d in range(2, 8))
LATE_WINDOW = timedelta(days=3)
EPOCH_LOCAL = local(date(2020, 1, 1))


def overdue_alerts(services: Services, unit: str = UNIT) -> dict[str, dict]:
    return {alert.subject: alert.detail for alert in recent_alerts(services.sessions, unit, EPOCH_LOCAL, kind=ASSESSMENT_OVERDUE)}


def overdue_open(services: Services, moment) -> int:
    """What the live figure counts as open past the deadline at `moment` (the same rule, other code path)."""
    day = moment.astimezone(ZoneInfo("Europe/Stockholm")).date()
    return services.figures.figure(UNIT, "assessment", Period(day, day), as_of=moment)["details"]["overdue_open"]


def test_each_overdue_case_alerts_once_and_no_other_case_ever_does(services: Services, clinic: Clinic) -> None:
    c = clinic
    c.ingest(
        c.contact("case-open-mon", local(MON, 9)),  # never assessed: overdue after Thursday
        c.contact("case-in-time", local(MON, 9)),
        c.assessed("case-in-time", local(THU, 16)),  # wait 3 days: compliant
        c.contact("case-excluded", local(MON, 9)),
        c.excluded("case-excluded", local(TUE, 10)),
        c.contact("case-unlisted", local(MON, 9), listed=False),
        c.contact("case-cancelled", local(MON, 9)),
        c.cancelled("case-cancelled", local(TUE, 10)),
        c.contact("case-late", local(MON, 9)),
        c.assessed("case-late", local(SAT, 10)),  # open when the deadline passes
        c.contact("case-closed-0001", local(MON, 9)),
        c.assessed("case-closed-0001", local(FRI, 0, 1)),  # too late, but closed before the sweep
        c.assessed("case-orphan", local(THU, 9)),  # an assessment without contact is a data fault, not a case
        c.contact("case-open-tue", local(TUE, 9)),  # overdue after Friday
    )

    assert sweep_deadlines(services, local(THU, 12), LATE_WINDOW) == 0, "every case is still within its deadline"
    assert sweep_deadlines(services, local(THU, 23, 59), LATE_WINDOW) == 0

    sweep = local(FRI, 0, 5)
    assert sweep_deadlines(services, sweep, LATE_WINDOW) == 2
    alerts = overdue_alerts(services)
    assert set(alerts) == {"case-open-mon", "case-late"}
    assert alerts["case-open-mon"] == {"contact_day": "2026-03-02", "deadline": "2026-03-05T23:59:59.999999+01:00"}
    assert overdue_open(services, sweep) == 2, "the sweep and the live figure agree"

    for minute in (6, 7, 30):  # later sweeps the same day: nothing new
        assert sweep_deadlines(services, local(FRI, 0, minute), LATE_WINDOW) == 0
    assert sweep_deadlines(services, local(FRI, 12), LATE_WINDOW) == 0, "case-open-tue is pending until the end of Friday"

    sweep = local(SAT, 0, 1)
    assert sweep_deadlines(services, sweep, LATE_WINDOW) == 1
    assert set(overdue_alerts(services)) == {"case-open-mon", "case-late", "case-open-tue"}
    # case-late was assessed on Saturday at 10:00: no longer open, but it alerted when it was.
    assert overdue_open(services, sweep) == 3

    for day in range(1, 10):
        assert sweep_deadlines(services, local(SAT, 0, 1) + timedelta(days=day), LATE_WINDOW) == 0
    with services.sessions() as session:
        assert len(session.scalars(select(Alert)).all()) == 3, "one alert per overdue case, ever"


def test_a_case_that_becomes_known_late_still_alerts_within_the_late_window(services: Services, clinic: Clinic) -> None:
    c = clinic
    assert sweep_deadlines(services, local(SAT, 0, 5), LATE_WINDOW) == 0  # nothing known yet (no data: no unit swept)
    c.ingest(c.contact("case-first", local(SAT, 8)))
    assert sweep_deadlines(services, local(SAT, 12), LATE_WINDOW) == 0
    # A collector back from an outage delivers a case contacted on Monday, overdue since Thursday night,
    # and one from February, overdue long before the late window.
    c.ingest(c.contact("case-delivered-late", local(MON, 9)), c.contact("case-ancient", local(date(2026, 2, 2), 9)))
    assert sweep_deadlines(services, local(SAT, 12, 1), LATE_WINDOW) == 1
    assert set(overdue_alerts(services)) == {"case-delivered-late"}


def test_deadlines_follow_the_units_time_zone_and_its_23_hour_dst_day(services: Services, clinic: Clinic) -> None:
    helsinki = "SE2321000016-HEL1"
    register_unit(services, helsinki, "Europe/Helsinki")
    hel = Clinic(services, helsinki)
    # Thursday 26 March 2026; Stockholm's deadline is the end of Sunday 29 March, the day clocks go forward.
    clinic.ingest(clinic.contact("case-stockholm", local(date(2026, 3, 26), 10)))
    hel.ingest(hel.contact("case-helsinki", local(date(2026, 3, 26), 10, tz=ZoneInfo("Europe/Helsinki"))))
    stockholm_midnight = local(date(2026, 3, 30))  # 22:00 UTC; 01:00 in Helsinki
    assert stockholm_midnight.utcoffset() == timedelta(hours=2)
    sweep_deadlines(services, stockholm_midnight - timedelta(minutes=1), LATE_WINDOW)  # 23:59 in Stockholm, 00:59 in Helsinki
    assert set(overdue_alerts(services, helsinki)) == {"case-helsinki"}
    assert overdue_alerts(services, UNIT) == {}
    sweep_deadlines(services, stockholm_midnight - timedelta(microseconds=1), LATE_WINDOW)
    assert overdue_alerts(services, UNIT) == {}, "the end of the 23-hour Sunday is still in time"
    sweep_deadlines(services, stockholm_midnight, LATE_WINDOW)
    assert overdue_alerts(services, UNIT) == {"case-stockholm": {"contact_day": "2026-03-26", "deadline": "2026-03-29T23:59:59.999999+02:00"}}


def test_recent_alerts_gives_those_raised_since_a_moment(services: Services, clinic: Clinic) -> None:
    clinic.ingest(clinic.contact("case-open-mon", local(MON, 9)), clinic.contact("case-open-tue", local(TUE, 9)))
    sweep_deadlines(services, local(FRI, 0, 5), LATE_WINDOW)
    sweep_deadlines(services, local(SAT, 0, 5), LATE_WINDOW)
    assert [a.subject for a in recent_alerts(services.sessions, UNIT, local(FRI, 0, 5))] == ["case-open-mon", "case-open-tue"]
    recent = recent_alerts(services.sessions, UNIT, local(FRI, 0, 6))
    assert [a.subject for a in recent] == ["case-open-tue"]
    assert recent[0].to_dict()["kind"] == ASSESSMENT_OVERDUE and recent[0].cleared_at is None
    assert recent_alerts(services.sessions, "SE2321000016-OTHR", EPOCH_LOCAL) == []


def test_the_scheduled_sweep_runs_through_the_job_runner(services: Services, clinic: Clinic) -> None:
    clinic.ingest(clinic.contact("case-open-mon", local(MON, 9)))
    clock = FakeClock(local(THU, 12))
    runner = JobRunner(services, JobSettings(), clock=clock)
    assert runner.keep_lease()
    assert runner.run("deadline_sweep") is JobOutcome.DONE
    assert overdue_alerts(services) == {}
    clock.set(local(FRI, 0, 1))
    assert runner.keep_lease() and runner.run("deadline_sweep") is JobOutcome.DONE
    assert set(overdue_alerts(services)) == {"case-open-mon"}
