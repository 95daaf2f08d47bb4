"""The telephone and assessment figures as sums of per-day parts.

Both figures count per local day: telephone by offer day (and rejections by rejection day),
assessment by assessment day (completed cases) and by contact day (unlisted and excluded contacts).
Only `pending` and `overdue_open` are not per day: they count the cases open at the moment itself.
So a figure for a period, as known at T, is the sum over its days of each day's counts as known at T,
plus the open cases at T.

A day's counts as known at T read only the stamps of the calls or cases anchored at that day
(`DayPart.latest_us`: the latest of those stamps that the counts read). When every one of them is at
or before T, the counts as known at T equal the counts as known now (every stored event): only the
earliest stamp of each kind is kept, so a stamp at or before T is exactly what T knew. The parts kept
in the database are the counts as known now; a day whose latest stamp is after T (a callback the day
after a period's last day, an exclusion recorded later) is counted again at T from its rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from operator import attrgetter
from datetime import date, datetime, timezone
from typing import Any, Iterable

from .assessment import CaseLedger, assessment_figure
from .calendar import Period
from .config import UnitConfig
from .telephone import CATEGORIES, CallLedger, telephone_figure

# "As known now": later than any stored event.
FOREVER = datetime(9999, 12, 31, tzinfo=timezone.utc)
TELEPHONE_COUNTS = ("same_day", "offered", *CATEGORIES, "rejected")
ASSESSMENT_COUNTS = ("numerator", "denominator", "orphans", "invalid", "not_listed", "excluded")
PART_METRICS = ("telephone", "assessment")
_CALL_FIELDS = ("offered", "answered", "callback_booked", "callback_made", "callback_reached", "abandoned")  # all but `rejected`
_CASE_FIELDS = ("contact", "assessed", "excluded", "cancelled")


@dataclass
class DayPart:
    counts: dict[str, int]
    by_profession: dict[str, int] = field(default_factory=dict)  # assessment only
    latest: datetime | None = None  # the latest stamp the counts read; None: nothing anchored that day

    def known_at(self, moment: datetime) -> bool:
        """True when these counts (as known now) are also the counts as known at `moment`."""
        return self.latest is None or self.latest <= moment


def empty_part(metric: str) -> DayPart:
    return DayPart(dict.fromkeys(TELEPHONE_COUNTS if metric == "telephone" else ASSESSMENT_COUNTS, 0))


def _latest_of(states: Iterable[Any], fields: tuple[str, ...]) -> datetime | None:
    """The latest stamp among `fields` of all `states`: one pass with a C attribute getter (a generator
    per call was half of a busy day's part)."""
    if len(fields) == 1:
        return max((stamp.at for state in states if (stamp := getattr(state, fields[0])) is not None), default=None)
    read = attrgetter(*fields)
    ats = [stamp.at for state in states for stamp in read(state) if stamp is not None]
    return max(ats, default=None)


def telephone_day(ledger: CallLedger, day: date, as_of: datetime, config: UnitConfig) -> DayPart:
    """The day's telephone counts as known at `as_of`, from a ledger holding at least the day's calls."""
    figure = ledger.figure("", Period(day, day), as_of, config)
    details = figure["details"]
    counts = {
        "same_day": figure["numerator"],
        "offered": figure["denominator"],
        **{name: details[name] for name in CATEGORIES},
        "rejected": details["rejected"],
    }
    calls = ledger.calls
    latest = [
        _latest_of([calls[call] for call in ledger.by_offer_date.get(day, ())], _CALL_FIELDS),
        _latest_of([calls[call] for call in ledger.by_rejection_date.get(day, ())], ("rejected",)),
    ]
    return DayPart(counts, latest=max((at for at in latest if at is not None), default=None))


def assessment_day(ledger: CaseLedger, day: date, as_of: datetime, config: UnitConfig) -> DayPart:
    """The day's assessment counts (not the open cases) as known at `as_of`."""
    figure = ledger.figure("", Period(day, day), as_of, config)
    details = figure["details"]
    counts = {
        "numerator": figure["numerator"],
        "denominator": figure["denominator"],
        **{name: details[name] for name in ("orphans", "invalid", "not_listed", "excluded")},
    }
    # Completed cases read every stamp of their case; contacts only the contact and the exclusion.
    cases = ledger.cases
    latest = [
        _latest_of([cases[case] for case in ledger.by_assessment_date.get(day, ())], _CASE_FIELDS),
        _latest_of([cases[case] for case in ledger.by_contact_date.get(day, ())], ("contact", "excluded")),
    ]
    return DayPart(counts, dict(details["by_profession"]), max((at for at in latest if at is not None), default=None))


def day_part(metric: str, ledger: Any, day: date, as_of: datetime, config: UnitConfig) -> DayPart:
    return (telephone_day if metric == "telephone" else assessment_day)(ledger, day, as_of, config)


def summed(metric: str, parts: Iterable[DayPart]) -> DayPart:
    total = empty_part(metric)
    by_profession: Counter[str] = Counter()
    for part in parts:
        for name, value in part.counts.items():
            total.counts[name] += value
        by_profession.update(part.by_profession)
    total.by_profession = dict(by_profession)
    return total


def figure_from_parts(metric: str, unit: str, period: Period, total: DayPart, config: UnitConfig, open_cases: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """The figure from the summed day parts; `open_cases`: (pending, overdue_open) at the moment (assessment)."""
    counts = total.counts
    if metric == "telephone":
        categories = {name: counts[name] for name in CATEGORIES}
        return telephone_figure(unit, period, counts["same_day"], counts["offered"], categories, counts["rejected"], config)
    pending, overdue_open = open_cases
    return assessment_figure(unit, period, counts, Counter(total.by_profession), pending, overdue_open, config)
