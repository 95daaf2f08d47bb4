"""What the metric rules need to know about a unit: time zone, opening hours, targets, region policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from types import MappingProxyType
from typing import Literal, Mapping, get_args
from zoneinfo import ZoneInfo

from .calendar import DEFAULT_TIME_ZONE, zone

MetricName = Literal["assessment", "continuity", "fixed_doctor", "telephone"]
METRICS: tuple[MetricName, ...] = get_args(MetricName)

DEFAULT_TARGETS: Mapping[str, float | None] = MappingProxyType({"telephone": 0.90, "assessment": 0.90, "fixed_doctor": 0.55, "continuity": None})

# The version of each metric's definition. Raise it whenever a rule changes what a figure means.
DEFINITION_VERSIONS: Mapping[str, int] = MappingProxyType({"telephone": 1, "assessment": 1, "fixed_doctor": 1, "continuity": 1})

OpeningHours = Mapping[int, tuple[tuple[time, time], ...]]  # weekday (Monday 0) → [open, close) spans


@dataclass(frozen=True)
class UnitConfig:
    time_zone: str = DEFAULT_TIME_ZONE
    targets: Mapping[str, float | None] = field(default_factory=lambda: DEFAULT_TARGETS)
    # None: no opening hours configured, every offered call counts.
    opening_hours: OpeningHours | None = None
    # Region policy: does a callback that did not reach the patient count as contact?
    unreached_callback_counts: bool = True

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.time_zone)

    def target(self, metric: str) -> float | None:
        return self.targets.get(metric, DEFAULT_TARGETS.get(metric))

    def is_open(self, at: datetime) -> bool:
        if self.opening_hours is None:
            return True
        local = at.astimezone(self.tz)
        moment = local.time().replace(tzinfo=None)
        return any(start <= moment < end for start, end in self.opening_hours.get(local.weekday(), ()))
