"""`continuity`: patients actually meeting their fixed doctor (SPEC 2.4)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, NamedTuple

from vardkoll.protocol import VisitCompleted

from .calendar import Period, days_in, months_earlier
from .config import UnitConfig
from .figures import make_figure, round_half_up
from .stamps import Stamp, instant

METRIC = "continuity"
COC_WINDOW_MONTHS = 18
COC_MIN_VISITS = 3


class DoctorVisit(NamedTuple):
    at: datetime
    patient: str
    practitioner: str
    fixed_doctor: str | None


def coc_window(end: date) -> Period:
    """18 months ending at `end`: from the day after the same date 18 months earlier."""
    return Period(months_earlier(end, COC_WINDOW_MONTHS) + timedelta(days=1), end)


def bice_boxerman(visits_per_practitioner: Counter[str]) -> Fraction:
    total = sum(visits_per_practitioner.values())
    squares = sum(count * count for count in visits_per_practitioner.values())
    return Fraction(squares - total, total * (total - 1))


class VisitLedger:
    """Doctor visits of listed patients, by local date. Other visits never enter any figure, so they
    are not kept. Each visit is its own event: duplicates are removed before they reach here."""

    event_classes = (VisitCompleted,)

    def __init__(self) -> None:
        self.by_date: dict[date, list[DoctorVisit]] = {}

    def apply(self, event: VisitCompleted, stamp: Stamp) -> None:
        if event.profession != "doctor" or not event.listed:
            return
        visit = DoctorVisit(stamp.at, event.patient, event.practitioner, event.fixed_doctor)
        self.by_date.setdefault(stamp.day, []).append(visit)

    def restore(self, day: date, visit: DoctorVisit) -> None:
        self.by_date.setdefault(day, []).append(visit)

    def figure(self, unit: str, period: Period, as_of: datetime, config: UnitConfig) -> dict[str, Any]:
        own = with_fixed = 0
        as_of = instant(as_of)
        for _, visits in days_in(self.by_date, period):
            for visit in visits:
                if visit.fixed_doctor is not None and visit.at <= as_of:
                    with_fixed += 1
                    own += visit.practitioner == visit.fixed_doctor
        per_patient: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for _, visits in days_in(self.by_date, coc_window(period.end)):
            for visit in visits:
                if visit.at <= as_of:
                    per_patient[visit.patient][visit.practitioner] += 1
        indices = [bice_boxerman(c) for c in per_patient.values() if sum(c.values()) >= COC_MIN_VISITS]
        return continuity_figure(unit, period, own, with_fixed, sum(indices, Fraction(0)), len(indices), config)


def bice_boxerman_of_sums(visits: int, squares: int) -> Fraction:
    """`bice_boxerman` from a patient's visit count n and the sum of squared visits per practitioner."""
    return Fraction(squares - visits, visits * (visits - 1))


def continuity_figure(unit: str, period: Period, own: int, with_fixed: int, index_sum: Fraction, eligible: int, config: UnitConfig) -> dict[str, Any]:
    """The figure from its counts: `index_sum` is the sum of the eligible patients' indices."""
    details = {
        "coc_doctor_mean": round_half_up(index_sum / eligible) if eligible else None,
        "eligible_patients": eligible,
    }
    return make_figure(unit, METRIC, period.start, period.end, own, with_fixed, config.target(METRIC), details)
