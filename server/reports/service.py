"""What the API and the pages ask of the reports: a region's month in a version and a variant."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from vardkoll.server.metrics.calendar import zone
from vardkoll.server.metrics.config import DEFAULT_TIME_ZONE

from ..services import Services
from ..storage.report_tables import MonthlyReportVersion
from .build import make_report, month_period
from .shape import FIELDS
from .store import keep, latest, report_of, version
from .suppression import public_lines

Variant = Literal["public", "internal"]


class NotEnded(ValueError):
    """The month has not ended: its report does not exist yet."""


def report_for(services: Services, region: str, month: date, now: datetime, number: int | None = None) -> MonthlyReportVersion | None:
    """Version `number` (default the latest) of the region's report for the month. The first is made
    here when the job has not made it yet; None for a version that does not exist."""
    period = month_period(month)
    if period.end >= now.astimezone(zone(DEFAULT_TIME_ZONE)).date():
        raise NotEnded(f"the month {period.start:%Y-%m} has not ended; its report is made after its last day")
    with services.sessions() as session:
        current = latest(session, region, period.start)
        if current is not None or number not in (None, 1):
            return current if number is None else version(session, region, period.start, number)
    return keep(services.sessions, make_report(services, region, period.start), period.start, now).row


def variant_of(row: MonthlyReportVersion, variant: Variant) -> dict[str, Any]:
    report = report_of(row)
    lines = public_lines(report["lines"]) if variant == "public" else [{**line, "suppressed": []} for line in report["lines"]]
    # Every line has every field (null where it is not this section's), as the typed answer says.
    return {**report, "variant": variant, "lines": [{**dict.fromkeys(FIELDS), **line} for line in lines]}
