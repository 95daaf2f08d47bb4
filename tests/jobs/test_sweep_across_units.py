"""The deadline sweep of many units in one pass: each unit's deadlines at its own local midnight, a unit
whose data and day have not changed left alone, and a sweep that runs as many statements for 50 units
as for 5.

Hand-worked, March 2026 (Stockholm UTC+1, Helsinki UTC+2): a contact on Monday 2 March is due at the end
of Thursday 5 March local, one on Tuesday 3 March at the end of Friday 6 March.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from vardkoll.server.jobs import ASSESSMENT_OVERDUE, recent_alerts
from vardkoll.server.jobs.deadline_sweep import sweep_deadlines
from vardkoll.server.services import Services
from vardkoll.server.storage.job_tables import SweepMark

from .jobs_support import Clinic, local, register_unit, statements_counted

MON, TUE, FRI, SAT = (date(2026, 3, d) for d in (2, 3, 6, 7))
HELSINKI = ZoneInfo("Europe/Helsinki")
LATE_WINDOW = timedelta(days=3)
S1, H1, S2 = "SE2321000016-S001", "SE2321000016-H001", "SE2321000016-S002"


def overdue(services: Services) -> dict[tuple[str, str], dict]:
    alerts = recent_alerts(services.sessions, None, local(date(2020, 1, 1)), kind=ASSESSMENT_OVERDUE)
    return {(alert.unit, alert.subject): alert.detail for alert in alerts}


def swept_at(services: Services) -> dict[str, object]:
    with services.sessions() as session:
        return {mark.unit: mark.swept_at for mark in session.scalars(select(SweepMark))}


def test_each_unit_is_swept_at_its_own_midnight(services: Services) -> None:
    for unit, zone in ((S1, "Europe/Stockholm"), (H1, "Europe/Helsinki"), (S2, "Europe/Stockholm")):
        register_unit(services, unit, zone)
    s1, h1, s2 = Clinic(services, S1), Clinic(services, H1), Clinic(services, S2)
    s1.ingest(s1.contact("case-s1-mon", local(MON, 9)))
    h1.ingest(h1.contact("case-h1-mon", local(MON, 9, tz=HELSINKI)))
    s2.ingest(s2.contact("case-s2-tue", local(TUE, 9)))

    first = local(FRI, 0, 5)  # 01:05 in Helsinki: both Monday contacts are overdue, the Tuesday one is not
    assert sweep_deadlines(services, first, LATE_WINDOW) == 2
    assert overdue(services) == {
        (S1, "case-s1-mon"): {"contact_day": "2026-03-02", "deadline": "2026-03-05T23:59:59.999999+01:00"},
        (H1, "case-h1-mon"): {"contact_day": "2026-03-02", "deadline": "2026-03-05T23:59:59.999999+02:00"},
    }
    assert swept_at(services) == {S1: first, H1: first, S2: first}

    # 23:30 in Stockholm is 00:30 on Saturday in Helsinki: only H1's midnight has passed, nothing of it is due.
    late_friday = local(FRI, 23, 30)
    assert sweep_deadlines(services, late_friday, LATE_WINDOW) == 0
    assert swept_at(services) == {S1: first, H1: late_friday, S2: first}

    assert sweep_deadlines(services, local(SAT, 0, 1), LATE_WINDOW) == 1
    assert (S2, "case-s2-tue") in overdue(services) and len(overdue(services)) == 3


def add_units_with_a_case_in_time(services: Services, units: list[str]) -> None:
    for unit in units:
        register_unit(services, unit)
        clinic = Clinic(services, unit)
        clinic.ingest(clinic.contact(f"case-{unit[-4:]}", local(MON, 9)), clinic.assessed(f"case-{unit[-4:]}", local(TUE, 9)))


def test_a_sweep_runs_as_many_statements_for_50_units_as_for_5(services: Services) -> None:
    units = [f"SE2321000016-Q{n:03d}" for n in range(50)]
    add_units_with_a_case_in_time(services, units[:5])
    with statements_counted(services) as for_5:
        assert sweep_deadlines(services, local(FRI, 0, 5), LATE_WINDOW) == 0
    add_units_with_a_case_in_time(services, units[5:])
    with statements_counted(services) as for_50:
        assert sweep_deadlines(services, local(SAT, 0, 5), LATE_WINDOW) == 0  # a new day: every unit is swept
    assert len(swept_at(services)) == 50
    assert len(for_50) == len(for_5), (for_5, for_50)
