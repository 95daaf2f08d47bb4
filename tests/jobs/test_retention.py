"""The retention job deletes raw events, dead letters and access records past their age; the figures of
the periods it empties stay as they were, and the self-audit still checks yesterday (issue 16)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select

from vardkoll.server.access_log import record_access
from vardkoll.server.jobs.retention import apply_retention
from vardkoll.server.jobs.self_audit import run_self_audit
from vardkoll.server.metrics import Period
from vardkoll.server.storage.access_tables import AccessRecord
from vardkoll.server.storage.tables import DeadLetter, StoredEvent

from .jobs_support import UNIT, local, register_unit

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def _count(services, table) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_old_raw_data_goes_and_the_figures_stay(services, clinic):
    register_unit(services, UNIT)
    old_day = date(2024, 1, 8)  # 792 days before NOW: past the default 730
    recent_day = date(2026, 3, 9)
    clinic.ingest(
        clinic.offered("call-old-1", local(old_day, 9)),
        clinic.answered("call-old-1", local(old_day, 9, 5)),
        clinic.offered("call-old-2", local(old_day, 10)),
        clinic.offered("call-new-1", local(recent_day, 9)),
        clinic.answered("call-new-1", local(recent_day, 9, 1)),
    )
    old_period = Period(old_day, old_day)
    before = services.figures.figure(UNIT, "telephone", old_period, cached=False)
    assert (before["numerator"], before["denominator"]) == (1, 2)
    with services.sessions.begin() as session:
        session.add(DeadLetter(received_at=NOW - timedelta(days=91), source="mqtt", reason="old refusal"))
        session.add(DeadLetter(received_at=NOW - timedelta(days=1), source="mqtt", reason="new refusal"))
        record_access(session, "uppföljning", "region_analyst", "read:events", unit=UNIT, now=NOW - timedelta(days=1100))
        record_access(session, "uppföljning", "region_analyst", "read:events", unit=UNIT, now=NOW - timedelta(days=10))

    assert apply_retention(services, NOW) == {"events_deleted": 3, "dead_letters_deleted": 1, "access_records_deleted": 1}
    assert _count(services, StoredEvent) == 2 and _count(services, DeadLetter) == 1 and _count(services, AccessRecord) == 1
    after = services.figures.figure(UNIT, "telephone", old_period, cached=False)  # from the metric state, not raw events
    assert {k: v for k, v in after.items() if k != "data"} == {k: v for k, v in before.items() if k != "data"}
    outcomes = run_self_audit(services, NOW)  # yesterday's raw events are all still there
    assert outcomes and all(outcome.ok for outcome in outcomes)
    assert apply_retention(services, NOW) == {"events_deleted": 0, "dead_letters_deleted": 0, "access_records_deleted": 0}
