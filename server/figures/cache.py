"""A bounded cache of computed figures, valid as long as the unit's stored data and settings are unchanged.

A figure is a pure function of the unit's stored metric state, its settings (time zone, opening hours,
targets, region policy: the `UnitConfig`), the metric, the period and the moment `as_of`; of the stored
state only the events at or before that moment matter. Ingest records, in the same transaction, per
unit and UTC date the version of the commit that last stored an event of that date (`store.py`: the
figure's *dependency version*), so an entry is looked up by (unit, metric, period, as_of) and is valid
only while both its dependency version and its settings stamp are the ones read for this request.

- The versions are read once per request for all requested units, and always before the rows are
  loaded: the rows a figure is computed from are at least as new as the version it is filed under,
  never older. A commit that lands in between only makes the entry fresher than its version; the next
  request reads the newer version and recomputes.
- The settings stamp is the `UnitConfig` the figure was computed with, as a hashable value. It changes
  exactly when a registry change reaches this process (a `UnitDirectory` reload after an API change, or
  after another process's change within the directory's TTL), and only for what a figure depends on.
- `as_of=None` is stored as None: the moment is then the end of the period's last day in the unit's
  time zone, which the stamp covers. A period that includes today is safe too: every new event for the
  unit bumps its version.
- The data freshness block (`data`: last event, devices silent) changes without new events, so it is
  never stored here: the activity and devices are read on every request, and each answer gets the
  unit's block (`freshness`: one read-only block per state, built anew when the rows moved).

Entries are per process; several server processes each keep their own and each sees every commit
through the versions. Figures without `as_of` are also kept in the database for every process
(`store.py`). The least recently used entry goes first once `max_entries` are held.

Whole sets (a region's units for one metric and period: Regionvy, `GET /api/v1/compliance?region=`)
are also kept as one entry, filed under a coarser *watermark*: the registry's generation (it changes
whenever any unit's settings or targets change) and every unit's data version
(`unit_activity.version`, bumped by every commit that stores an event of the unit, whatever its date).
A unit's dependency version is never newer than its data version, so an unchanged watermark means
every figure of the set is unchanged; any commit for any of the units, or any settings change, makes
the next request answer those units again figure by figure (each still from this cache or the store
when its own dependency version allows), the units whose data version is unchanged from the kept set
(a settings change: none of them). Watermarks are read before the rows, as versions are.

Kept figures are shared, not copied: a figure's nested values (`details`, and what they hold) are
frozen once, when the figure is kept, into `ReadOnlyDict`s, and every answer gets its own top-level
dict around them (callers add `data` to it). A caller that changes a nested value gets a TypeError
instead of changing what every later answer shows. Until 2026-12-07 kept sets were JSON, parsed for
every answer, and kept figures deep copies: under a country's traffic, when each Regionvy finds some
units changed, the parsing and serialising alone was a fifth of its figure sets' time.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Hashable, NoReturn, Sequence

from vardkoll.server.metrics import Period, UnitConfig

DEFAULT_MAX_ENTRIES = 20_000
DEFAULT_MAX_SETS = 128  # a kept set of 230 units holds about 230 KB of dicts: at most some 30 MB

# (unit, metric, first day, last day, as_of or None)
FigureKey = tuple[str, str, date, date, datetime | None]
# (units in the caller's order, metric, first day, last day, as_of or None, how computed)
SetKey = tuple[tuple[str, ...], str, date, date, datetime | None, Hashable]
# (registry generation, each unit's data version in the set's order)
Watermark = tuple[int, tuple[int, ...]]


def set_key(units: list[str], metric: str, period: Period, as_of: datetime | None, how: Hashable) -> SetKey:
    return (tuple(units), metric, period.start, period.end, as_of, how)


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
    set_hits: int = 0  # whole sets answered at once


@dataclass(frozen=True)
class _Entry:
    version: int | None
    stamp: Hashable
    figure: dict[str, Any]


class ReadOnlyDict(dict[str, Any]):  # a dict to orjson, Jinja and ==; only its changes are refused
    """A kept figure's nested dict, shared by every answer that holds it: read it, never change it."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a kept figure's nested values are shared and read-only: copy the figure to change it")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse  # every method that changes it

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class ReadOnlyList(list[Any]):  # a list to orjson, Jinja and ==; only its changes are refused
    """A kept figure's nested list (see `ReadOnlyDict`)."""

    __slots__ = ()

    _refuse = ReadOnlyDict._refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = clear = extend = insert = pop = remove = reverse = sort = _refuse  # every method that changes it

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def frozen_figure(figure: dict[str, Any]) -> dict[str, Any]:
    """A figure as it is kept: a new top-level dict, its nested values frozen (those frozen already reused)."""
    result = dict(figure)
    for key, value in figure.items():
        if type(value) in _TO_FREEZE:
            result[key] = _frozen(value)
    return result


def answer_of(figure: dict[str, Any]) -> dict[str, Any]:
    """A kept figure as a caller gets it: a top-level dict of its own, the nested values shared."""
    return dict(figure)


_TO_FREEZE = (dict, list)  # exactly these types: a ReadOnlyDict or ReadOnlyList is frozen already


def _frozen(value: Any) -> Any:
    if isinstance(value, (ReadOnlyDict, ReadOnlyList)):
        return value
    if isinstance(value, dict):
        return ReadOnlyDict({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return ReadOnlyList(_frozen(item) for item in value)
    return value


class FigureCache:
    """A thread-safe LRU of figures (without their `data` block); `max_entries=0` disables it. Answers
    share the kept figures' nested values (`ReadOnlyDict`)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._entries: OrderedDict[FigureKey, _Entry] = OrderedDict()
        self._sets: OrderedDict[SetKey, tuple[Watermark, tuple[dict[str, Any], ...]]] = OrderedDict()
        self.max_sets = DEFAULT_MAX_SETS if max_entries else 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: FigureKey, version: int | None, stamp: Hashable) -> dict[str, Any] | None:
        """The stored figure (`answer_of` it) when it was computed from this data version and these settings."""
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
        return answer_of(entry.figure)

    def holds(self, key: FigureKey, version: int | None, stamp: Hashable) -> bool:
        """Whether `get` would answer, without counting it or copying the figure."""
        if not self.max_entries:
            return False
        with self._lock:
            entry = self._entries.get(key)
        return entry is not None and entry.version == version and entry.stamp == stamp

    def put(self, key: FigureKey, version: int | None, stamp: Hashable, figure: dict[str, Any]) -> None:
        """Keep `figure` (which must not hold the `data` block) as `frozen_figure` makes it."""
        if not self.max_entries:
            return
        entry = _Entry(version, stamp, frozen_figure(figure))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.stats.evictions += 1

    def get_set(self, key: SetKey) -> tuple[Watermark, tuple[dict[str, Any], ...]] | None:
        """The watermark a whole set was kept under and its kept figures: for the figure service,
        which judges unit by unit which are still valid (those whose data version and registry
        generation are) and gives callers `answer_of` them, never the kept figures themselves."""
        if not self.max_sets:
            return None
        with self._lock:
            entry = self._sets.get(key)
            if entry is None:
                return None
            self._sets.move_to_end(key)
            return entry

    def has_set(self, key: SetKey) -> bool:
        """Whether a whole set is kept under `key` (under whatever watermark)."""
        with self._lock:
            return key in self._sets

    def put_set(self, key: SetKey, watermark: Watermark, kept_figures: Sequence[dict[str, Any]]) -> None:
        """Keep a whole set's figures (without their `data` blocks, each as `frozen_figure` made it: a figure of
        the set kept before is kept again as it is) under the watermark read before them."""
        if not self.max_sets:
            return
        figures = tuple(kept_figures)
        with self._lock:
            self._sets[key] = (watermark, figures)
            self._sets.move_to_end(key)
            while len(self._sets) > self.max_sets:
                self._sets.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._sets.clear()
