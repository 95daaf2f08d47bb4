"""Scheduled jobs that run in exactly one server process (a lease in the database): the deadline
sweep, silent-collector detection and the nightly self-audit, and the alerts they raise."""

from ..alerts.store import ASSESSMENT_OVERDUE, AUDIT_MISMATCH, COLLECTOR_SILENT, AlertRecord, recent_alerts
from .lease import current_holder, make_holder_id, release, try_acquire
from .runner import JobOutcome, JobRunner, JobStatus, ScheduledJob, default_jobs
from .self_audit import AuditOutcome, audit_outcomes
from .settings import JobSettings

__all__ = [
    "ASSESSMENT_OVERDUE",
    "AUDIT_MISMATCH",
    "COLLECTOR_SILENT",
    "AlertRecord",
    "AuditOutcome",
    "JobOutcome",
    "JobRunner",
    "JobSettings",
    "JobStatus",
    "ScheduledJob",
    "audit_outcomes",
    "current_holder",
    "default_jobs",
    "make_holder_id",
    "recent_alerts",
    "release",
    "try_acquire",
]
