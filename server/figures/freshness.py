"""Each unit's data freshness block (`data` of its figures), built once per state and shared read-only.

A region's live update and its Regionvy read the activity and devices of all 230 units, and building
230 blocks again (timestamps formatted, device lists sorted) was a seventh of a live update in which
four units had changed (py-spy, 2026-12-07). A block is kept per unit under exactly what it is built
from: the unit's last event and last receipt, and its devices in service with their status. It is
rebuilt when any of them differs, so a collector that falls silent without new events (the job marks
it) shows at the next read, as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Hashable, Sequence

from ..storage.stamp_keys import from_epoch_us
from .cache import ReadOnlyDict, ReadOnlyList

MAX_UNITS = 50_000  # a country has about 1 200 units; a block is a few hundred bytes


class FreshnessBlocks:
    """Blocks by unit; safe from several threads (a race builds the same block twice, both right)."""

    def __init__(self, max_units: int = MAX_UNITS) -> None:
        self._max_units = max_units
        self._kept: dict[str, tuple[Hashable, dict[str, Any]]] = {}

    def of(self, units: Sequence[str], activity: dict[str, Any], devices: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
        """Per unit, its block as of `activity` (its `unit_activity` row, if any) and `devices` (device, status)."""
        if len(self._kept) > self._max_units:
            self._kept = {}
        result = {}
        for unit in units:
            seen = activity.get(unit)
            unit_devices = devices.get(unit, ())
            state = (
                None if seen is None else (seen.last_event_at_us, seen.last_received_at),
                tuple((device.device, device.status) for device in unit_devices),
            )
            kept = self._kept.get(unit)
            if kept is None or kept[0] != state:
                kept = self._kept[unit] = (state, block(seen, unit_devices))
            result[unit] = kept[1]
        return result


def block(seen: Any, devices: Sequence[Any]) -> dict[str, Any]:
    """How fresh the data behind a unit's figures is: silence is "no data", never "compliant"."""
    return ReadOnlyDict(
        {
            "no_data": seen is None,
            "last_event_at": from_epoch_us(seen.last_event_at_us).isoformat() if seen and seen.last_event_at_us is not None else None,
            "last_received_at": _iso(seen.last_received_at) if seen else None,
            "devices": len(devices),
            "devices_offline": ReadOnlyList(sorted(d.device for d in devices if d.status == "offline")),
            "devices_silent": ReadOnlyList(sorted(d.device for d in devices if d.status == "silent")),
        }
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
