"""`fixed_doctor`: listed patients with a named fixed doctor (SPEC 2.3)."""

from __future__ import annotations

import bisect
from datetime import datetime
from fractions import Fraction
from typing import Any

from vardkoll.protocol import DoctorListing, ListingSnapshot

from .calendar import Period, end_of_day
from .config import UnitConfig
from .figures import make_figure, round_half_up
from .stamps import Stamp

METRIC = "fixed_doctor"
# Listed patients per fixed doctor that a doctor's list should not exceed: a guideline for reading the
# lists (the clinic profile flags doctors above it), not part of the figure.
LIST_SIZE_GUIDELINE = 1100
_LAST_ID = "\U0010ffff"  # sorts after every event id


class SnapshotLedger:
    """Every listing snapshot of a unit, kept sorted by (at, event id): snapshots are daily, so few."""

    event_classes = (ListingSnapshot,)

    def __init__(self) -> None:
        self._keys: list[tuple[datetime, str]] = []
        self._snapshots: list[ListingSnapshot] = []

    def apply(self, event: ListingSnapshot, stamp: Stamp) -> None:
        key = (stamp.at, stamp.event_id)
        index = bisect.bisect_left(self._keys, key)
        if index < len(self._keys) and self._keys[index] == key:
            return
        self._keys.insert(index, key)
        self._snapshots.insert(index, event)

    def latest(self, cutoff: datetime) -> ListingSnapshot | None:
        index = bisect.bisect_right(self._keys, (cutoff, _LAST_ID))
        return self._snapshots[index - 1] if index else None

    def snapshot_for(self, period: Period, as_of: datetime, config: UnitConfig) -> ListingSnapshot | None:
        """The snapshot a figure for `period` as known at `as_of` is read from."""
        return self.latest(min(as_of, end_of_day(period.end, config.tz)))

    def figure(self, unit: str, period: Period, as_of: datetime, config: UnitConfig) -> dict[str, Any]:
        snapshot = self.snapshot_for(period, as_of, config)
        details: dict[str, Any] = dict.fromkeys(("doctors_active", "max_list_size", "mean_list_size", "snapshot_at"))
        numerator = denominator = 0
        if snapshot is not None:
            numerator, denominator = snapshot.named_doctor, snapshot.listed
            details["snapshot_at"] = snapshot.at.astimezone(config.tz).isoformat()
            if snapshot.doctors is not None:
                sizes = [doctor.listed for doctor in snapshot.doctors if doctor.active]
                details["doctors_active"] = len(sizes)
                if sizes:
                    details["max_list_size"] = max(sizes)
                    details["mean_list_size"] = round_half_up(Fraction(sum(sizes), len(sizes)), 2)
        return make_figure(unit, METRIC, period.start, period.end, numerator, denominator, config.target(METRIC), details)


def active_doctor_lists(snapshot: ListingSnapshot | None) -> list[DoctorListing]:
    """The snapshot's active doctors (those `doctors_active` counts), longest list first, then by pseudonym."""
    if snapshot is None or snapshot.doctors is None:
        return []
    return sorted((doctor for doctor in snapshot.doctors if doctor.active), key=lambda doctor: (-doctor.listed, doctor.doctor))


def above_guideline(doctor: DoctorListing) -> bool:
    """More listed patients than the guideline: 1 100 itself is within it."""
    return doctor.listed > LIST_SIZE_GUIDELINE
