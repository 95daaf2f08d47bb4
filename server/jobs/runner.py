"""Run the scheduled jobs in exactly one of several server processes.

Every process runs an APScheduler `BackgroundScheduler` with the same jobs; a job does its work only
in the process that holds the database lease (renewed every ttl/3), and is skipped elsewhere. When the
holder stops it releases the lease; when it dies the lease expires after its ttl. Either way another
process takes over at its next renewal. A job that raises is logged and the scheduler goes on.

    runner = JobRunner(services)   # in the app's lifespan
    runner.start()
    ...
    runner.stop()                  # waits for running jobs, then releases the lease
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..alerts import AlertSettings, deliver, hand_out, hand_out_digests, run_checks
from ..monitoring import count_job_run
from ..services import Services
from .deadline_sweep import sweep_deadlines
from .figure_rollups import prune_ad_hoc, refresh_rollups
from .lease import make_holder_id, release, try_acquire
from .national_report import refresh_reports
from .retention import apply_retention
from .self_audit import run_self_audit
from .settings import JobSettings
from .silent_collectors import detect_silent_collectors

log = logging.getLogger("vardkoll.jobs")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ScheduledJob:
    """A job: `run(now)` does the work and returns counts for the log (no personal data)."""

    name: str
    trigger: BaseTrigger
    run: Callable[[datetime], Mapping[str, int] | None]
    misfire_grace_s: int = 60


class JobOutcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # another process holds the lease


@dataclass
class JobStatus:
    runs: int = 0
    failures: int = 0
    last_started_at: datetime | None = None
    last_outcome: JobOutcome | None = None
    last_error: str | None = None  # the exception's type only


def default_jobs(services: Services, settings: JobSettings, holder: str = "jobs") -> list[ScheduledJob]:
    late_window = timedelta(seconds=settings.overdue_late_window_s)
    silent_after = timedelta(seconds=settings.silent_after_s)

    def deadline_sweep(now: datetime) -> dict[str, int]:
        return {"alerts_raised": sweep_deadlines(services, now, late_window)}

    def silent_collectors(now: datetime) -> dict[str, int]:
        report = detect_silent_collectors(services.sessions, now, silent_after)
        return {"fell_silent": report.fell_silent, "heard_again": report.heard_again, "silent": report.silent}

    def self_audit(now: datetime) -> dict[str, int]:
        outcomes = run_self_audit(services, now)
        return {"units": len({o.unit for o in outcomes}), "checked": len(outcomes), "mismatches": sum(not o.ok for o in outcomes)}

    def figure_rollups(now: datetime) -> dict[str, int]:
        return {"figures_checked": refresh_rollups(services, now), "ad_hoc_pruned": prune_ad_hoc(services, now)}

    def retention(now: datetime) -> dict[str, int]:
        return apply_retention(services, now)

    alert_settings = AlertSettings()

    def alert_checks(now: datetime) -> dict[str, int]:
        report = run_checks(services, now)
        return {**report.raised, "cleared": report.cleared}

    def alert_delivery(now: datetime) -> dict[str, int]:
        handed_out = hand_out(services.sessions, alert_settings, now)
        digests = hand_out_digests(services, alert_settings, now)
        report = deliver(services.sessions, alert_settings, holder, utc_now)
        return {"handed_out": handed_out, "digests": digests, "sent": report.sent, "retried": report.retried, "failed": report.failed}

    def national_report(now: datetime) -> dict[str, int]:
        return refresh_reports(services, now, settings.report_months)

    audit_zone = ZoneInfo(settings.audit_time_zone)
    return [
        ScheduledJob(
            "deadline_sweep", IntervalTrigger(seconds=settings.deadline_sweep_every_s), deadline_sweep, misfire_grace_s=int(settings.deadline_sweep_every_s)
        ),
        ScheduledJob(
            "silent_collectors", IntervalTrigger(seconds=settings.silent_check_every_s), silent_collectors, misfire_grace_s=int(settings.silent_check_every_s)
        ),
        ScheduledJob("figure_rollups", IntervalTrigger(seconds=settings.rollups_every_s), figure_rollups, misfire_grace_s=int(settings.rollups_every_s)),
        ScheduledJob("national_report", IntervalTrigger(seconds=settings.reports_every_s), national_report, misfire_grace_s=int(settings.reports_every_s)),
        ScheduledJob(
            "self_audit", CronTrigger(hour=settings.audit_at.hour, minute=settings.audit_at.minute, timezone=audit_zone), self_audit, misfire_grace_s=3600
        ),
        ScheduledJob("alert_checks", IntervalTrigger(seconds=settings.alert_checks_every_s), alert_checks, misfire_grace_s=int(settings.alert_checks_every_s)),
        ScheduledJob(
            "alert_delivery",
            IntervalTrigger(seconds=settings.alert_delivery_every_s),
            alert_delivery,
            misfire_grace_s=max(1, int(settings.alert_delivery_every_s)),
        ),
        ScheduledJob(
            "retention", CronTrigger(hour=settings.retention_at.hour, minute=settings.retention_at.minute, timezone=audit_zone), retention, misfire_grace_s=3600
        ),
    ]


class JobRunner:
    def __init__(
        self,
        services: Services,
        settings: JobSettings | None = None,
        clock: Clock = utc_now,
        jobs: list[ScheduledJob] | None = None,
        holder: str | None = None,
    ) -> None:
        self._services = services
        self.settings = settings or JobSettings()
        self._clock = clock
        self.holder = holder or make_holder_id()
        job_list = default_jobs(services, self.settings, self.holder) if jobs is None else jobs
        self.jobs: dict[str, ScheduledJob] = {job.name: job for job in job_list}
        self.status: dict[str, JobStatus] = {name: JobStatus() for name in self.jobs}
        self._lock = threading.Lock()
        self._held_until: datetime | None = None
        self._scheduler: BackgroundScheduler | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Try for the lease, then schedule the renewal and every job in a background scheduler."""
        if self._scheduler is not None:
            raise RuntimeError("the job runner is already started")
        scheduler = BackgroundScheduler(timezone=timezone.utc, job_defaults={"coalesce": True, "max_instances": 1})
        renew_s = self.settings.lease_renew_every_s
        scheduler.add_job(self.keep_lease, IntervalTrigger(seconds=renew_s), id="lease", name="lease", misfire_grace_time=max(1, int(renew_s)))
        for job in self.jobs.values():
            scheduler.add_job(self.run, job.trigger, args=[job.name], id=job.name, name=job.name, misfire_grace_time=job.misfire_grace_s)
        self.keep_lease()
        scheduler.start()
        self._scheduler = scheduler
        _log(logging.INFO, "jobs_started", holder=self.holder, jobs=",".join(self.jobs), leader=self.holds_lease())

    def stop(self) -> None:
        """Stop scheduling, wait for jobs that are running, and give the lease up."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)
        with self._lock:
            was_holder, self._held_until = self._held_until is not None, None
        if was_holder:
            try:
                release(self._services.sessions, self.settings.lease_name, self.holder)
            except Exception as exc:  # the lease then simply expires
                _log(logging.WARNING, "lease_release_failed", holder=self.holder, error=type(exc).__name__)
            else:
                _log(logging.INFO, "lease_released", holder=self.holder)

    # -- the lease -----------------------------------------------------------------------------------

    def holds_lease(self) -> bool:
        held_until = self._held_until
        return held_until is not None and self._clock() < held_until

    def keep_lease(self) -> bool:
        """Acquire or renew the lease; True while this process holds it."""
        now = self._clock()
        try:
            acquired = try_acquire(self._services.sessions, self.settings.lease_name, self.holder, self.settings.lease_ttl_s, now)
        except Exception as exc:  # the database is away: what we hold stays valid until it expires
            _log(logging.WARNING, "lease_renewal_failed", holder=self.holder, error=type(exc).__name__)
            return self.holds_lease()
        with self._lock:
            had = self._held_until is not None and now < self._held_until
            self._held_until = now + timedelta(seconds=self.settings.lease_ttl_s) if acquired else None
        if acquired and not had:
            _log(logging.INFO, "lease_acquired", holder=self.holder, ttl_s=self.settings.lease_ttl_s)
        elif had and not acquired:
            _log(logging.WARNING, "lease_lost", holder=self.holder)
        return acquired

    # -- running jobs --------------------------------------------------------------------------------

    def run(self, name: str) -> JobOutcome:
        """Run job `name` now if this process holds the lease. Never raises for the job's own errors."""
        job = self.jobs[name]
        if not self.holds_lease():
            return JobOutcome.SKIPPED
        status = self.status[name]
        now = self._clock()
        status.last_started_at = now
        status.runs += 1
        started = time.monotonic()
        try:
            counts = job.run(now) or {}
        except Exception as exc:
            status.failures += 1
            count_job_run(name, "failed")
            status.last_outcome, status.last_error = JobOutcome.FAILED, type(exc).__name__
            # The type and the code locations only: an exception's message may quote data.
            frames = traceback.extract_tb(exc.__traceback__)
            _log(
                logging.ERROR,
                "job_failed",
                job=name,
                error=type(exc).__name__,
                duration_ms=_ms(started),
                at=";".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" for frame in frames[-4:]),
            )
            return JobOutcome.FAILED
        status.last_outcome, status.last_error = JobOutcome.DONE, None
        count_job_run(name, "done")
        _log(logging.INFO if any(counts.values()) else logging.DEBUG, "job_done", job=name, duration_ms=_ms(started), **counts)
        return JobOutcome.DONE


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _log(level: int, event: str, **fields: Any) -> None:
    """One line `event key=value ...`; the same fields in `record.fields` for structured handlers."""
    log.log(level, " ".join([event, *(f"{key}={value}" for key, value in fields.items())]), extra={"event": event, "fields": fields})
