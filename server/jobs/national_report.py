"""Make each region's national report after its month ends, and a new version when a late event
(or a changed unit) changes an ended month's report.

Each run checks the ended months of the last `months`: a month whose inputs digest (the units' data
versions up to its end and their settings, server/reports/build.py) is the one its latest version
was made from is current, one query. Otherwise the report is made again, and kept as a new version
only when its content differs (server/reports/store.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from vardkoll.server.metrics.calendar import zone
from vardkoll.server.metrics.config import DEFAULT_TIME_ZONE

from ..reports.build import inputs_digest, make_report, region_units
from ..reports.store import keep, latest
from ..services import Services
from ..storage.registry_tables import UnitRow
from .figure_rollups import complete_months


def refresh_reports(services: Services, now: datetime, months: int = 13) -> dict[str, int]:
    with services.sessions() as session:
        regions = sorted(set(session.scalars(select(UnitRow.region))))
    counts = {"reports_current": 0, "reports_made": 0, "reports_unchanged": 0}
    for period in complete_months(now.astimezone(zone(DEFAULT_TIME_ZONE)).date(), months):
        for region in regions:
            with services.sessions() as session:
                inputs = inputs_digest(services, session, region_units(session, region), period)
                current = latest(session, region, period.start)
                if inputs is None and current is None:
                    continue  # no data up to the month's end: nothing to report
                if current is not None and current.inputs == inputs:
                    counts["reports_current"] += 1
                    continue
            kept = keep(services.sessions, make_report(services, region, period.start), period.start, now)
            counts["reports_made" if kept.new else "reports_unchanged"] += 1
    return counts
