"""`telephone`: contact with the clinic the same day (SPEC 2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from vardkoll.protocol import CallAbandoned, CallAnswered, CallbackBooked, CallbackDone, CallOffered, CallRejected, EventBase

from .calendar import Period, days_in
from .config import UnitConfig
from .figures import make_figure, share_of
from .stamps import Stamp, earlier, instant, known, move

METRIC = "telephone"
CATEGORIES = ("answered", "callback_same_day", "callback_later", "callback_pending", "abandoned")


@dataclass(slots=True)
class CallState:
    offered: Stamp | None = None
    answered: Stamp | None = None
    callback_booked: Stamp | None = None
    callback_made: Stamp | None = None  # reached or not
    callback_reached: Stamp | None = None
    abandoned: Stamp | None = None
    rejected: Stamp | None = None


# The stamp each kind of call event sets (CallbackDone with `reached` also sets callback_reached).
FIELD_OF_CLASS: dict[type[EventBase], str] = {
    CallOffered: "offered",
    CallAnswered: "answered",
    CallbackBooked: "callback_booked",
    CallbackDone: "callback_made",
    CallAbandoned: "abandoned",
    CallRejected: "rejected",
}


class CallLedger:
    """Per call, the earliest event of each kind; calls indexed by offer date and by rejection date."""

    event_classes = tuple(FIELD_OF_CLASS)

    def __init__(self) -> None:
        self.calls: dict[str, CallState] = {}
        self.by_offer_date: dict[date, set[str]] = {}
        self.by_rejection_date: dict[date, set[str]] = {}

    def apply(self, event: EventBase, stamp: Stamp) -> None:
        call = event.call  # type: ignore[attr-defined]  # every class in FIELD_OF_CLASS (this ledger's event_classes) has a call
        state = self.calls.get(call)
        if state is None:
            state = self.calls[call] = CallState()
        field = FIELD_OF_CLASS[type(event)]
        current = getattr(state, field)
        if earlier(current, stamp):
            if field == "offered":
                move(self.by_offer_date, call, current, stamp)
            elif field == "rejected":
                move(self.by_rejection_date, call, current, stamp)
            setattr(state, field, stamp)
        if field == "callback_made" and event.reached and earlier(state.callback_reached, stamp):  # type: ignore[attr-defined]  # only CallbackDone maps to callback_made
            state.callback_reached = stamp

    def restore(self, call: str, state: CallState) -> None:
        """Add a call whose state was kept elsewhere (the database), with its index entries."""
        self.calls[call] = state
        if state.offered is not None:
            move(self.by_offer_date, call, None, state.offered)
        if state.rejected is not None:
            move(self.by_rejection_date, call, None, state.rejected)

    def classify(self, state: CallState, as_of: datetime, config: UnitConfig) -> tuple[bool, str | None]:
        """(same-day contact?, category) for one offered call, as known at `as_of`."""
        offer_day = state.offered.day  # type: ignore[union-attr]  # a call in the by-offer index has an offered stamp
        answered = known(state.answered, as_of)
        callback = known(state.callback_made if config.unreached_callback_counts else state.callback_reached, as_of)
        if answered is not None and answered.day == offer_day:
            return True, "answered"
        if callback is not None and callback.day == offer_day:
            return True, "callback_same_day"
        if callback is not None and callback.day > offer_day:
            return False, "callback_later"
        if known(state.callback_booked, as_of) is not None and known(state.callback_made, as_of) is None:
            return False, "callback_pending"
        if known(state.abandoned, as_of) is not None:
            return False, "abandoned"
        return False, None

    def figure(self, unit: str, period: Period, as_of: datetime, config: UnitConfig) -> dict[str, Any]:
        counts = dict.fromkeys(CATEGORIES, 0)
        offered = same_day = 0
        as_of = instant(as_of)
        for _, calls in days_in(self.by_offer_date, period):
            for call in calls:
                state = self.calls[call]
                if state.offered.at > as_of or not config.is_open(state.offered.at):  # type: ignore[union-attr]  # a call in the by-offer index has an offered stamp
                    continue
                offered += 1
                contact, category = self.classify(state, as_of, config)
                same_day += contact
                if category is not None:
                    counts[category] += 1
        rejected = len(
            [
                call
                for _, calls in days_in(self.by_rejection_date, period)
                for call in calls
                if self.calls[call].rejected.at <= as_of  # type: ignore[union-attr]  # a call in the by-rejection index has a rejected stamp
            ]
        )
        return telephone_figure(unit, period, same_day, offered, counts, rejected, config)


def telephone_figure(unit: str, period: Period, same_day: int, offered: int, counts: dict[str, int], rejected: int, config: UnitConfig) -> dict[str, Any]:
    """The figure from its counts (also summed from per-day parts, `server.metrics.day_parts`)."""
    details = {**counts, "rejected": rejected, "strict_share": share_of(same_day, offered + rejected)}
    return make_figure(unit, METRIC, period.start, period.end, same_day, offered, config.target(METRIC), details)
