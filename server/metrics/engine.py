"""The metric engine over many units: route each event to its unit's state."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterable

from vardkoll.protocol import EventBase

from .calendar import Period
from .config import UnitConfig
from .unit_state import Applied, UnitState


class MetricEngine:
    def __init__(self, config_of: Callable[[str], UnitConfig] | None = None) -> None:
        self._config_of = config_of or (lambda unit: UnitConfig())
        self.units: dict[str, UnitState] = {}

    def state(self, unit: str) -> UnitState:
        state = self.units.get(unit)
        if state is None:
            state = self.units[unit] = UnitState(unit, self._config_of(unit))
        return state

    def apply(self, event: EventBase) -> Applied:
        state = self.units.get(event.unit)
        return (state or self.state(event.unit)).apply(event)

    def apply_all(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.apply(event)

    def span(self) -> Period | None:
        """The local dates the applied events cover, across all units."""
        firsts = [s.first_day for s in self.units.values() if s.first_day is not None]
        lasts = [s.last_day for s in self.units.values() if s.last_day is not None]
        return Period(min(firsts), max(lasts)) if firsts else None

    def figures(self, period: Period, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """One figure per unit and metric, sorted by unit, then metric."""
        return [figure for unit in sorted(self.units) for figure in self.units[unit].figures(period, as_of)]
