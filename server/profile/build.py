"""What the clinic profile holds: 12 months of a unit's four figures beside the region's, and the listed
patients per doctor from the listing snapshot the fixed-doctor figure reads. No PDF here (`server/web/profile_pdf.py`).

Every number comes from the services the API answers with: the unit's months are
`FigureService.series` (as `GET /api/v1/series?grain=month` gives them), the region's are `region_figure`
(as `GET /api/v1/regions/{region}/compliance`), and the doctors' lists come from the snapshot chosen by
`SnapshotLedger.snapshot_for`, the fixed-doctor rule itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from vardkoll.server.metrics import DEFINITION_VERSIONS, Period, UnitConfig, end_of_day
from vardkoll.server.metrics.calendar import months_earlier
from vardkoll.server.metrics.definitions import DEFINITIONS
from vardkoll.server.metrics.fixed_doctor import LIST_SIZE_GUIDELINE, above_guideline, active_doctor_lists

from ..figures import FigureService
from ..figures.loading import load_snapshots
from ..figures.region import region_figure
from ..storage.registry_tables import UnitRow

MONTHS = 12


class MonthNotEnded(ValueError):
    """The profile is of whole months: the last one must have ended in the unit's time zone."""


@dataclass(frozen=True)
class MonthFigures:
    period: Period  # a whole calendar month
    unit: dict[str, Any]  # the API's figure for the unit
    region: dict[str, Any]  # the API's region figure (every unit of the region summed)


@dataclass(frozen=True)
class MetricYear:
    metric: str
    name: str  # the metric's Swedish name, as the help pages title it
    definition_version: int
    months: list[MonthFigures]  # oldest first


@dataclass(frozen=True)
class DoctorLine:
    label: str  # "Läkare 1", by list size, longest first: never a name
    pseudonym: str  # as the collector made it; the clinic can look it up (`vardkoll collector lookup`)
    listed: int
    above_guideline: bool


@dataclass(frozen=True)
class ClinicProfile:
    unit: str
    name: str
    region: str
    month: date  # the first day of the last month
    months: list[Period]
    metrics: list[MetricYear]
    doctors: list[DoctorLine]
    listing_at: datetime | None  # the snapshot the doctors come from, in the unit's time zone; None: no snapshot
    guideline: int
    made_at: datetime


def profile_months(month: date) -> list[Period]:
    """The 12 calendar months ending with `month` (its first day), oldest first."""
    starts = [months_earlier(month, back) for back in range(MONTHS - 1, -1, -1)]
    return [Period(start, months_earlier(start, -1) - timedelta(days=1)) for start in starts]


def last_ended_month(today: date) -> date:
    """The first day of the month before the one holding `today`."""
    return months_earlier(today.replace(day=1), 1)


def clinic_profile(
    figures: FigureService, session: Session, unit: UnitRow, region_units: list[UnitRow], config: UnitConfig, month: date, now: datetime
) -> ClinicProfile:
    """The profile for the 12 months ending with `month`; each figure as known at the end of its month (the API's default)."""
    months = profile_months(month)
    last = months[-1]
    if last.end >= now.astimezone(config.tz).date():
        raise MonthNotEnded(
            f"{month:%Y-%m} has not ended yet in {config.tz.key}; the profile is of whole months (the last ended one is {last_ended_month(now.astimezone(config.tz).date()):%Y-%m})"
        )
    metrics = []
    for metric, definition in DEFINITIONS.items():
        own = figures.series(unit.unit, metric, months)
        region = [region_figure(figures, session, unit.region, region_units, metric, period) for period in months]
        metrics.append(MetricYear(metric, definition.name, DEFINITION_VERSIONS[metric], [MonthFigures(p, u, r) for p, u, r in zip(months, own, region)]))
    as_known_at = end_of_day(last.end, config.tz)
    snapshot = load_snapshots(session, unit.unit, as_known_at).snapshot_for(last, as_known_at, config)
    doctors = [
        DoctorLine(f"Läkare {n}", doctor.doctor, doctor.listed, above_guideline(doctor)) for n, doctor in enumerate(active_doctor_lists(snapshot), start=1)
    ]
    return ClinicProfile(
        unit=unit.unit,
        name=unit.name,
        region=unit.region,
        month=month,
        months=months,
        metrics=metrics,
        doctors=doctors,
        listing_at=snapshot.at.astimezone(config.tz) if snapshot else None,
        guideline=LIST_SIZE_GUIDELINE,
        made_at=now,
    )
