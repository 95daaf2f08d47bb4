"""The job runner: jobs run only in the process that holds the lease, another takes over when it stops
or its lease expires, and a job that raises is logged without its message and does not stop the rest."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from vardkoll.server.jobs import JobOutcome, JobRunner, JobSettings, ScheduledJob, current_holder, default_jobs
from vardkoll.server.services import Services

from .jobs_support import FakeClock

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
SETTINGS = JobSettings(lease_ttl_s=30)


def two_runners(make_services, clock: Callable[[], datetime], runs: list[str]) -> tuple[JobRunner, JobRunner]:
    """Two "server processes" on one database, each with a job `count` that notes who ran it."""
    runners = []
    for name in ("a", "b"):
        holder = f"host-{name}:1:{name * 8}"
        count = ScheduledJob("count", IntervalTrigger(hours=1), lambda now, holder=holder: runs.append(holder) or {"ran": 1})
        runners.append(JobRunner(make_services(), SETTINGS, clock=clock, jobs=[count], holder=holder))
    return runners[0], runners[1]


def test_only_the_lease_holder_runs_a_job(make_services) -> None:
    clock, runs = FakeClock(T0), []
    a, b = two_runners(make_services, clock, runs)
    assert a.keep_lease() and not b.keep_lease()
    assert a.run("count") is JobOutcome.DONE
    assert b.run("count") is JobOutcome.SKIPPED
    clock.advance(seconds=10)
    assert a.keep_lease() and not b.keep_lease()
    assert [a.run("count"), b.run("count")] == [JobOutcome.DONE, JobOutcome.SKIPPED]
    assert runs == [a.holder, a.holder]


def test_when_the_holder_stops_the_other_takes_over(make_services) -> None:
    clock, runs = FakeClock(T0), []
    a, b = two_runners(make_services, clock, runs)
    assert a.keep_lease() and not b.keep_lease()
    a.stop()  # releases the lease: no need to wait for it to expire
    assert not a.holds_lease()
    clock.advance(seconds=1)
    assert b.keep_lease()
    assert [a.run("count"), b.run("count")] == [JobOutcome.SKIPPED, JobOutcome.DONE]
    assert runs == [b.holder]


def test_when_the_holder_stops_renewing_its_lease_expires_and_the_other_takes_over(make_services) -> None:
    clock, runs = FakeClock(T0), []
    a, b = two_runners(make_services, clock, runs)
    assert a.keep_lease()
    clock.advance(seconds=29)
    assert not b.keep_lease(), "29 s into a 30 s lease"
    assert a.run("count") is JobOutcome.DONE
    clock.advance(seconds=2)  # a (hung, say) did not renew in time
    assert not a.holds_lease()
    assert a.run("count") is JobOutcome.SKIPPED, "an expired holder no longer runs jobs"
    assert b.keep_lease()
    assert b.run("count") is JobOutcome.DONE
    assert not a.keep_lease(), "the old holder finds the lease taken"
    assert runs == [a.holder, b.holder]


def test_a_job_that_raises_is_logged_without_its_message_and_counted(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    def broken(now: datetime) -> None:
        raise ValueError("case pat-secret-4711 could not be read")

    runner = JobRunner(services, SETTINGS, clock=FakeClock(T0), jobs=[ScheduledJob("broken", IntervalTrigger(hours=1), broken)])
    assert runner.keep_lease()
    with caplog.at_level(logging.DEBUG, logger="vardkoll.jobs"):
        assert runner.run("broken") is JobOutcome.FAILED
        assert runner.run("broken") is JobOutcome.FAILED
    failures = [record for record in caplog.records if getattr(record, "event", None) == "job_failed"]
    assert len(failures) == 2 and failures[0].levelno == logging.ERROR
    assert failures[0].fields["job"] == "broken" and failures[0].fields["error"] == "ValueError"
    assert "test_job_runner.py" in failures[0].fields["at"]
    assert "pat-secret-4711" not in caplog.text
    assert runner.status["broken"].failures == 2 and runner.status["broken"].last_error == "ValueError"


def test_with_the_real_scheduler_one_process_runs_and_a_failing_job_does_not_stop_the_others(make_services) -> None:
    settings = JobSettings(lease_ttl_s=0.6)  # renewed every 0.2 s
    runs: list[str] = []
    failing_runs: list[str] = []
    lock = threading.Lock()

    def make(name: str) -> JobRunner:
        holder = f"host-{name}:1:{name * 8}"

        def count(now: datetime) -> dict[str, int]:
            with lock:
                runs.append(holder)
            return {"ran": 1}

        def fail(now: datetime) -> None:
            failing_runs.append(holder)
            raise RuntimeError("boom")

        jobs = [ScheduledJob("count", IntervalTrigger(seconds=0.05), count), ScheduledJob("fail", IntervalTrigger(seconds=0.05), fail)]
        return JobRunner(make_services(), settings, jobs=jobs, holder=holder)

    a, b = make("a"), make("b")
    sessions = make_services().sessions
    a.start()
    b.start()
    try:
        assert wait_for(lambda: len(runs) >= 5, timeout_s=10)
        assert set(runs) == {a.holder}, "only the lease holder runs jobs"
        assert len(failing_runs) >= 2 and set(failing_runs) == {a.holder}, "the failing job keeps being scheduled"
        a.stop()
        stopped_at = len(runs)
        assert wait_for(lambda: b.holder in runs[stopped_at:], timeout_s=10), "the other process takes over"
        assert a.holder not in runs[stopped_at:]
        assert current_holder(sessions, settings.lease_name, datetime.now(timezone.utc)) == b.holder
    finally:
        a.stop()
        b.stop()
    assert current_holder(sessions, settings.lease_name, datetime.now(timezone.utc)) is None, "stop releases the lease"


def test_default_jobs_sweep_every_minute_and_audit_at_a_quarter_past_three_stockholm_time(services: Services) -> None:
    jobs = {job.name: job for job in default_jobs(services, JobSettings())}
    assert set(jobs) == {
        "deadline_sweep",
        "silent_collectors",
        "figure_rollups",
        "self_audit",
        "retention",
        "alert_checks",
        "alert_delivery",
        "national_report",
    }
    assert jobs["alert_delivery"].trigger.interval == timedelta(seconds=10)
    assert jobs["deadline_sweep"].trigger.interval == timedelta(minutes=1)
    assert jobs["figure_rollups"].trigger.interval == timedelta(minutes=15)
    assert jobs["silent_collectors"].trigger.interval == timedelta(minutes=1)
    # 29 March 2026: Stockholm moves to summer time at 02:00, so 03:15 local is 01:15 UTC.
    after = datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc)
    assert jobs["self_audit"].trigger.get_next_fire_time(None, after) == datetime(2026, 3, 29, 1, 15, tzinfo=timezone.utc)
    winter = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    assert jobs["self_audit"].trigger.get_next_fire_time(None, winter) == datetime(2026, 1, 11, 2, 15, tzinfo=timezone.utc)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
