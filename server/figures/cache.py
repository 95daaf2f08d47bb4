"""A bounded cache of computed figures, valid as long as the unit's stored data and settings are unchanged.

A figure is a pure function of the unit's stored metric state, its settings (time zone, opening hours,
targets, region policy: the `UnitConfig`), the metric, the period and the moment `as_of`. The stored
state changes only in a commit that also bumps the unit's `unit_activity.version` (ingest's
`_touch_units`, in the same transaction), so an entry is looked up by (unit, metric, period, as_of) and
is valid only while both its data version and its settings stamp are the ones read for this request.

- The version is read once per request for all requested units (the same query that reads the data's
  freshness), and always before the rows are loaded: the rows a figure is computed from are at least
  as new as the version it is filed under, never older. A commit that lands in between only makes the
  entry fresher than its version; the next request reads the newer version and recomputes.
- The settings stamp is the `UnitConfig` the figure was computed with, as a hashable value. It changes
  exactly when a registry change reaches this process (a `UnitDirectory` reload after an API change, or
  after another process's change within the directory's TTL), and only for what a figure depends on.
- `as_of=None` is stored as None: the moment is then the end of the period's last day in the unit's
  time zone, which the stamp covers. A period that includes today is safe too: every new event for the
  unit bumps its version.
- Settled periods are keyed by the unit's `settled_version` instead (`data_version`): a figure whose
  moment (as_of, and never before the end of the period's last day) lies more than SETTLED_AFTER (2 h)
  before the request depends only on events at or before that moment, and any such event stored
  later is late (more than LATE_EVENT_AFTER, 1 h, before it is stored, even with the clocks of two
  processes up to an hour apart), so ingest bumps `settled_version` for it. New events as they happen
  bump only `version`, so last month's figures stay cached while today's change: that is what makes
  trends over weeks and months and a region's year affordable during opening hours.
- The data freshness block (`data`: last event, devices silent) changes without new events, so it is
  never stored here: callers add it to a copy on every request.

Entries are per process; several server processes each keep their own and each sees every commit
through the version. The least recently used entry goes first once `max_entries` are held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Hashable

from vardkoll.server.metrics import Period, UnitConfig, end_of_day

from ..storage.tables import LATE_EVENT_AFTER, UnitActivity

DEFAULT_MAX_ENTRIES = 20_000

# (unit, metric, first day, last day, as_of or None)
FigureKey = tuple[str, str, date, date, datetime | None]
# ("live", version) or ("settled", settled_version); None while the unit has no data at all
DataVersion = tuple[str, int] | None
SETTLED_AFTER = LATE_EVENT_AFTER + timedelta(hours=1)  # the extra hour allows for clocks that differ


def data_version(activity: UnitActivity | None, period: Period, as_of: datetime | None, config: UnitConfig, now: datetime) -> DataVersion:
    """The version a figure is filed under: the settled one when the figure's moment is settled."""
    if activity is None:
        return None
    end = end_of_day(period.end, config.tz)
    moment = max(as_of, end) if as_of is not None else end
    if moment < now - SETTLED_AFTER:
        return ("settled", activity.settled_version)
    return ("live", activity.version)


def figure_key(unit: str, metric: str, period: Period, as_of: datetime | None) -> FigureKey:
    """Aware datetimes compare and hash by instant, which is all a figure uses of `as_of`."""
    return (unit, metric, period.start, period.end, as_of)


def settings_stamp(config: UnitConfig) -> Hashable:
    """Everything of a `UnitConfig` that a figure may depend on, as a hashable value."""
    hours = None if config.opening_hours is None else tuple(sorted((day, tuple(spans)) for day, spans in config.opening_hours.items()))
    return (config.time_zone, tuple(sorted(config.targets.items())), hours, config.unreached_callback_counts)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0  # nothing stored for the key
    stale: int = 0  # stored, but for another data version or other settings
    evictions: int = 0


@dataclass(frozen=True)
class _Entry:
    version: DataVersion
    stamp: Hashable
    figure: dict[str, Any]


class FigureCache:
    """A thread-safe LRU of figures (without their `data` block); `max_entries=0` disables it."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._entries: OrderedDict[FigureKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: FigureKey, version: DataVersion, stamp: Hashable) -> dict[str, Any] | None:
        """A copy of the stored figure when it was computed from this data version and these settings."""
        if not self.max_entries:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            if entry.version != version or entry.stamp != stamp:
                self.stats.stale += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
        return _copy(entry.figure)

    def put(self, key: FigureKey, version: DataVersion, stamp: Hashable, figure: dict[str, Any]) -> None:
        """Store a copy of `figure` (which must not hold the `data` block)."""
        if not self.max_entries:
            return
        entry = _Entry(version, stamp, _copy(figure))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.stats.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _copy(value: Any) -> Any:
    """A copy of a figure deep enough that no caller can change a stored one (dicts and lists; the
    leaves are numbers, strings, booleans and None)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
