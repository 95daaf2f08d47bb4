"""Keep the stored figures (server/figures/store.py) of the periods people look back on current.

Every complete calendar month and ISO week of the last year (`months`, `weeks`) for every unit with
data and every metric: whatever is missing or stale (a late event of that period, a new target) is
computed and stored, the rest is only checked. A region's month is then one indexed read, in any
server process. The periods that are still running (this month, this week, today) change with every
event and are computed when asked for.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.metrics.calendar import zone
from vardkoll.server.metrics.config import DEFAULT_TIME_ZONE

from ..figures.store import prune_stored
from ..services import Services
from ..storage.tables import UnitActivity


def complete_months(today: date, count: int) -> list[Period]:
    """The `count` calendar months before the one holding `today`, newest first."""
    periods = []
    end = today.replace(day=1) - timedelta(days=1)
    for _ in range(count):
        periods.append(Period(end.replace(day=1), end))
        end = end.replace(day=1) - timedelta(days=1)
    return periods


def complete_weeks(today: date, count: int) -> list[Period]:
    """The `count` ISO weeks (Monday to Sunday) before the one holding `today`, newest first."""
    monday = today - timedelta(days=today.weekday())
    return [Period(monday - timedelta(weeks=n), monday - timedelta(weeks=n) + timedelta(days=6)) for n in range(1, count + 1)]


AD_HOC_KEPT_FOR = timedelta(days=30)


def is_month_or_week(period: Period) -> bool:
    """A whole calendar month or a whole ISO week: the periods dashboards and exports ask for again."""
    whole_month = period.start == period.end.replace(day=1) and (period.end + timedelta(days=1)).day == 1
    whole_week = period.start.weekday() == 0 and period.end - period.start == timedelta(days=6)
    return whole_month or whole_week


def prune_ad_hoc(services: Services, now: datetime) -> int:
    """Stored figures of other periods (say 5 March to 17 April) are dropped 30 days after they were
    computed, so the table holds what is asked for again, not every period anyone ever asked for."""
    with services.sessions.begin() as session:
        return prune_stored(session, is_month_or_week, now - AD_HOC_KEPT_FOR)


def refresh_rollups(services: Services, now: datetime, months: int = 12, weeks: int = 12) -> int:
    """Compute what is missing or stale; returns how many figures were looked at. "Today" is taken in
    Europe/Stockholm, the default zone: a unit elsewhere at most gets its newest period computed on
    demand a few hours longer."""
    with services.sessions() as session:
        units = sorted(session.scalars(select(UnitActivity.unit)))
    if not units:
        return 0
    today = now.astimezone(zone(DEFAULT_TIME_ZONE)).date()
    periods = complete_months(today, months) + complete_weeks(today, weeks)
    for period in periods:
        for metric in METRICS:
            services.figures.figures(units, metric, period, keep_in_memory=False)
    return len(units) * len(METRICS) * len(periods)
