"""The access log: every read of case-level data (at-risk lists, raw event exports) and every change made
through the API, the pages or `vardkoll admin`, with who, when, which unit and from where.

It names people only as their tokens are named, holds no values of patients (case pseudonyms and event
contents stay out), and is kept for `VARDKOLL_ACCESS_LOG_RETENTION_DAYS` (the retention job trims it)."""

from .log import ACTIONS_READ_CASES, read_access_log, record_access, record_change_from_request, trim_access_log

__all__ = ["ACTIONS_READ_CASES", "read_access_log", "record_access", "record_change_from_request", "trim_access_log"]
