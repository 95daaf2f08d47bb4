"""One unit's metric state: every distinct event applied once, figures answered for any period and moment."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, Protocol

from vardkoll.protocol import EventBase
from vardkoll.protocol.sameness import event_content

from .assessment import CaseLedger
from .calendar import Period, end_of_day
from .config import METRICS, UnitConfig
from .continuity import VisitLedger
from .fixed_doctor import SnapshotLedger
from .stamps import Stamp, new_stamp
from .telephone import CallLedger


class Applied(enum.Enum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"  # the same event again: ignored
    CONFLICT = "conflict"  # the same id with different content: refused


class Ledger(Protocol):
    """What each metric's ledger offers the unit state."""

    @property
    def event_classes(self) -> tuple[type[EventBase], ...]: ...

    def apply(self, event: Any, stamp: Stamp) -> None: ...

    def figure(self, unit: str, period: Period, as_of: datetime, config: UnitConfig) -> dict[str, Any]: ...


EVENT_CLASSES_OF_METRIC: dict[str, tuple[type[EventBase], ...]] = {
    "telephone": CallLedger.event_classes,
    "assessment": CaseLedger.event_classes,
    "fixed_doctor": SnapshotLedger.event_classes,
    "continuity": VisitLedger.event_classes,
}
# Each event class feeds exactly one metric's ledger: a figure of a metric depends on its events only.
METRIC_OF_CLASS: dict[type[EventBase], str] = {kind: metric for metric, kinds in EVENT_CLASSES_OF_METRIC.items() for kind in kinds}


def _fingerprint(event: EventBase) -> int:
    # A hash, not the content: the state keeps one int per event id (protocol.sameness says what counts).
    return hash(event_content(event))


class UnitState:
    """Applies events in amortised O(1) each; results depend only on the set of distinct events."""

    def __init__(self, unit: str, config: UnitConfig | None = None) -> None:
        self.unit = unit
        self.config = config or UnitConfig()
        self.calls = CallLedger()
        self.cases = CaseLedger()
        self.snapshots = SnapshotLedger()
        self.visits = VisitLedger()
        self._ledgers: dict[str, Ledger] = {"telephone": self.calls, "assessment": self.cases, "fixed_doctor": self.snapshots, "continuity": self.visits}
        self._ledger_of_class = {kind: ledger for ledger in self._ledgers.values() for kind in ledger.event_classes}
        self._seen: dict[str, int] = {}
        self._tz = self.config.tz
        self.first_day: date | None = None
        self.last_day: date | None = None

    def apply(self, event: EventBase) -> Applied:
        if event.unit != self.unit:
            raise ValueError(f"event of unit {event.unit} applied to the state of {self.unit}")
        fingerprint = _fingerprint(event)
        seen = self._seen.get(event.id)
        if seen is not None:
            return Applied.DUPLICATE if seen == fingerprint else Applied.CONFLICT
        self._seen[event.id] = fingerprint
        day = event.at.astimezone(self._tz).date()
        if self.first_day is None or day < self.first_day:
            self.first_day = day
        if self.last_day is None or day > self.last_day:
            self.last_day = day
        self._ledger_of_class[type(event)].apply(event, new_stamp(event.at, event.id, day))
        return Applied.COUNTED

    def figure(self, metric: str, period: Period, as_of: datetime | None = None) -> dict[str, Any]:
        """The figure for `metric` over `period`, as known at `as_of` (default: the period's last instant)."""
        if metric not in self._ledgers:
            raise ValueError(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")
        moment = as_of if as_of is not None else end_of_day(period.end, self.config.tz)
        return self._ledgers[metric].figure(self.unit, period, moment, self.config)

    def figures(self, period: Period, as_of: datetime | None = None) -> list[dict[str, Any]]:
        return [self.figure(metric, period, as_of) for metric in METRICS]
