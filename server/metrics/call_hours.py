"""Today's calls hour by hour: the `telephone` figure of one local day, split by the hour of the offer.

Each offered call is classified exactly as the figure classifies it (`CallLedger.classify`, the same
opening-hours filter, only what is known at `as_of`), so the hours add up to the day's figure:
Σ contact = numerator, Σ offered = denominator, Σ pending = `callback_pending`, Σ abandoned =
`abandoned`, Σ rejected = `rejected` (by the hour of the rejection).

Hours are the unit's local clock hours, counted as real hours from local midnight: a spring-forward
day has 23 of them (no 02–03), a fall-back day 25 (02–03 twice, first in summer time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from .calendar import end_of_day
from .config import UnitConfig
from .telephone import CallLedger

HOUR = timedelta(hours=1)


@dataclass
class CallHour:
    start: datetime  # local, aware; on a fall-back day two hours share a clock time but not an offset
    offered: int = 0
    contact: int = 0  # got contact the same day (answered or called back)
    pending: int = 0  # callback booked, not yet made
    abandoned: int = 0
    rejected: int = 0  # not offered: queue full or closed
    known: bool = True  # False for hours that had not begun at `as_of`

    @property
    def other(self) -> int:
        """Offered without contact the same day and neither pending nor abandoned (called back on a
        later day, or no outcome known yet)."""
        return self.offered - self.contact - self.pending - self.abandoned


def hours_of(day: date, config: UnitConfig) -> list[datetime]:
    """The start of each local hour of `day`, in order: 23, 24 or 25 of them."""
    # Arithmetic in UTC: Python adds and subtracts datetimes of one time zone on the wall clock.
    tz = config.tz
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)
    count = round((end_of_day(day, tz).astimezone(timezone.utc) - start) / HOUR)
    return [(start + HOUR * i).astimezone(tz) for i in range(count)]


def _index(moment: datetime, starts: list[datetime]) -> int | None:
    index = (moment.astimezone(timezone.utc) - starts[0].astimezone(timezone.utc)) // HOUR
    return index if 0 <= index < len(starts) else None


def calls_by_hour(ledger: CallLedger, day: date, as_of: datetime, config: UnitConfig, now: datetime | None = None) -> list[CallHour]:
    """Counts as known at `as_of`; hours that begin after `now` (default `as_of`) are marked not known."""
    starts = hours_of(day, config)
    clock = (now or as_of).astimezone(timezone.utc)
    hours = [CallHour(start, known=start.astimezone(timezone.utc) <= clock) for start in starts]
    for call in ledger.by_offer_date.get(day, ()):
        state = ledger.calls[call]
        offered = state.offered
        if offered.at > as_of or not config.is_open(offered.at):  # type: ignore[union-attr]  # a call in the by-offer index has an offered stamp
            continue
        index = _index(offered.at, starts)  # type: ignore[union-attr]  # a call in the by-offer index has an offered stamp
        if index is None:
            continue
        hour = hours[index]
        contact, category = ledger.classify(state, as_of, config)
        hour.offered += 1
        hour.contact += contact
        hour.pending += category == "callback_pending"
        hour.abandoned += category == "abandoned"
    for call in ledger.by_rejection_date.get(day, ()):
        rejected = ledger.calls[call].rejected
        if rejected.at <= as_of and (index := _index(rejected.at, starts)) is not None:  # type: ignore[union-attr]  # a call in the by-rejection index has a rejected stamp
            hours[index].rejected += 1
    return hours
