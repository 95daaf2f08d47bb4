"""`assessment`: medical assessment within 3 days of contact (SPEC 2.2)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterator

from vardkoll.protocol import CareAssessed, CareCancelled, CareContact, CareExcluded, EventBase

from .calendar import Period, days_in, end_of_day
from .config import UnitConfig
from .figures import make_figure, share_of
from .stamps import Stamp, earlier, instant, known, move

METRIC = "assessment"
LIMIT_DAYS = 3


@dataclass(slots=True)
class CaseState:
    contact: Stamp | None = None
    listed: bool = True  # from the earliest contact
    assessed: Stamp | None = None
    profession: str = ""  # of the earliest assessment
    excluded: Stamp | None = None
    cancelled: Stamp | None = None


# The stamp each kind of case event sets (a contact also sets `listed`, an assessment `profession`).
FIELD_OF_CLASS: dict[type[EventBase], str] = {CareContact: "contact", CareAssessed: "assessed", CareExcluded: "excluded", CareCancelled: "cancelled"}


@dataclass(frozen=True, slots=True)
class OpenCase:
    """An in-scope case with a contact and no assessment, as known at some moment."""

    case: str  # the pseudonym
    state: CaseState
    contact_day: date
    deadline: datetime  # the end of the local contact day + 3: the last instant an assessment still complies

    def overdue_at(self, as_of: datetime) -> bool:
        return as_of > self.deadline


@dataclass(frozen=True, slots=True)
class CompletedCase:
    """An in-scope case whose first assessment is known: one in a figure's denominator."""

    case: str  # the pseudonym
    state: CaseState
    wait_days: int  # the assessment's local date minus the contact's: the contact day is day 0

    @property
    def in_time(self) -> bool:
        return self.wait_days <= LIMIT_DAYS


@dataclass(slots=True)
class _Tally:
    numerator: int = 0
    denominator: int = 0
    orphans: int = 0
    invalid: int = 0


class CaseLedger:
    """Per case, its earliest contact, assessment, exclusion and cancellation; cases indexed by the
    date of their first assessment and of their contact, and the set never assessed at all."""

    event_classes = tuple(FIELD_OF_CLASS)

    def __init__(self) -> None:
        self.cases: dict[str, CaseState] = {}
        self.by_assessment_date: dict[date, set[str]] = {}
        self.by_contact_date: dict[date, set[str]] = {}
        self.never_assessed: set[str] = set()

    def apply(self, event: EventBase, stamp: Stamp) -> None:
        case = event.case  # type: ignore[attr-defined]  # every class in FIELD_OF_CLASS (this ledger's event_classes) has a case
        state = self.cases.get(case)
        if state is None:
            state = self.cases[case] = CaseState()
            self.never_assessed.add(case)
        kind = type(event)
        if kind is CareContact:
            if earlier(state.contact, stamp):
                move(self.by_contact_date, case, state.contact, stamp)
                state.contact, state.listed = stamp, event.listed  # type: ignore[attr-defined]  # CareContact: the class was matched just above
        elif kind is CareAssessed:
            if earlier(state.assessed, stamp):
                move(self.by_assessment_date, case, state.assessed, stamp)
                state.assessed, state.profession = stamp, event.profession  # type: ignore[attr-defined]  # CareAssessed: the class was matched just above
                self.never_assessed.discard(case)
        elif kind is CareExcluded:
            if earlier(state.excluded, stamp):
                state.excluded = stamp
        elif earlier(state.cancelled, stamp):
            state.cancelled = stamp

    def restore(self, case: str, state: CaseState) -> None:
        """Add a case whose state was kept elsewhere (the database), with its index entries."""
        self.cases[case] = state
        if state.contact is not None:
            move(self.by_contact_date, case, None, state.contact)
        if state.assessed is not None:
            move(self.by_assessment_date, case, None, state.assessed)
        else:
            self.never_assessed.add(case)

    @staticmethod
    def outside_scope(state: CaseState, as_of: datetime) -> bool:
        """Outside the metric at `as_of`: unlisted, excluded, or cancelled before any assessment known then."""
        if not state.listed or known(state.excluded, as_of):
            return True
        cancelled = known(state.cancelled, as_of)
        assessed = known(state.assessed, as_of)
        return cancelled is not None and (assessed is None or cancelled.at < assessed.at)

    def open_cases(self, as_of: datetime, config: UnitConfig) -> Iterator[OpenCase]:
        """Every in-scope case still open at `as_of` (contact known, no assessment known), whatever its
        contact date: the cases `details.pending` and `details.overdue_open` count."""
        as_of_day = as_of.astimezone(config.tz).date()
        at_most = instant(as_of)  # the same moment, quicker to compare with stamps
        candidates = set(self.never_assessed)
        for day, cases in self.by_assessment_date.items():
            if day >= as_of_day:  # assessed after `as_of`, so possibly open at it
                candidates.update(cases)
        for case in candidates:
            state = self.cases[case]
            contact = known(state.contact, at_most)
            if contact is None or known(state.assessed, at_most) or self.outside_scope(state, at_most):
                continue
            yield OpenCase(case, state, contact.day, end_of_day(contact.day + timedelta(days=LIMIT_DAYS), config.tz))

    def completed(self, period: Period, as_of: datetime, tally: _Tally | None = None) -> Iterator[CompletedCase]:
        """The in-scope cases whose first assessment, known at `as_of`, falls in `period`: the figure's
        denominator, one by one (the national report breaks them down). Orphans and invalid cases
        are counted in `tally` when given, never yielded."""
        as_of = instant(as_of)
        for _, cases in days_in(self.by_assessment_date, period):
            for case in cases:
                state = self.cases[case]
                assessed = state.assessed
                if assessed.at > as_of:  # type: ignore[union-attr]  # a case in the by-assessment index has an assessed stamp
                    continue
                contact = known(state.contact, as_of)
                if contact is None:
                    if tally is not None:
                        tally.orphans += 1
                    continue
                wait_days = (assessed.day - contact.day).days  # type: ignore[union-attr]  # contact and assessed are both set for a completed in-scope case
                if wait_days < 0:
                    if tally is not None:
                        tally.invalid += 1
                    continue
                if self.outside_scope(state, as_of):
                    continue
                yield CompletedCase(case, state, wait_days)

    def _completed(self, period: Period, as_of: datetime, by_profession: Counter[str]) -> _Tally:
        tally = _Tally()
        for done in self.completed(period, as_of, tally):
            tally.denominator += 1
            tally.numerator += done.in_time
            by_profession[done.state.profession] += 1
        return tally

    def _open_at(self, as_of: datetime, config: UnitConfig) -> tuple[int, int]:
        """(pending, overdue_open) at `as_of`."""
        pending = overdue = 0
        for case in self.open_cases(as_of, config):
            if case.overdue_at(as_of):
                overdue += 1
            else:
                pending += 1
        return pending, overdue

    def _out_of_scope_contacts(self, period: Period, as_of: datetime) -> tuple[int, int]:
        not_listed = excluded = 0
        as_of = instant(as_of)
        for _, cases in days_in(self.by_contact_date, period):
            for case in cases:
                state = self.cases[case]
                if state.contact.at > as_of:  # type: ignore[union-attr]  # a case in the by-contact index has a contact stamp
                    continue
                if not state.listed:
                    not_listed += 1
                elif known(state.excluded, as_of):
                    excluded += 1
        return not_listed, excluded

    def figure(self, unit: str, period: Period, as_of: datetime, config: UnitConfig) -> dict[str, Any]:
        by_profession: Counter[str] = Counter()
        tally = self._completed(period, as_of, by_profession)
        pending, overdue_open = self._open_at(as_of, config)
        not_listed, excluded = self._out_of_scope_contacts(period, as_of)
        counts = {
            "numerator": tally.numerator,
            "denominator": tally.denominator,
            "orphans": tally.orphans,
            "invalid": tally.invalid,
            "not_listed": not_listed,
            "excluded": excluded,
        }
        return assessment_figure(unit, period, counts, by_profession, pending, overdue_open, config)


def assessment_figure(
    unit: str, period: Period, counts: dict[str, int], by_profession: Counter[str], pending: int, overdue_open: int, config: UnitConfig
) -> dict[str, Any]:
    """The figure from its counts (also summed from per-day parts, `server.metrics.day_parts`):
    `counts` holds numerator, denominator, orphans, invalid, not_listed and excluded."""
    numerator, denominator = counts["numerator"], counts["denominator"]
    details = {
        "pending": pending,
        "overdue_open": overdue_open,
        "projected_share": share_of(numerator, denominator + overdue_open),
        "orphans": counts["orphans"],
        "invalid": counts["invalid"],
        "not_listed": counts["not_listed"],
        "excluded": counts["excluded"],
        "by_profession": dict(sorted(by_profession.items())),
    }
    return make_figure(unit, METRIC, period.start, period.end, numerator, denominator, config.target(METRIC), details)
