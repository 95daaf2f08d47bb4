"""Which computed day parts are worth writing to `figure_day_parts`.

A part is kept for every process under the day's version (`day_parts.keep_parts`). A day that has
ended rarely changes again: its part is written whenever it is computed. The unit's running day
changes with each of its events, and while traffic flows every live update and every page after an
event computed that day's part again and wrote it, one transaction each (11 % of a region's live
update and 6 % of a Regionvy in the web slot under a country's traffic, docs/benchmarks.md), only for
the part to go stale at the unit's next event. So a process writes a unit's running day at most once
per `every_s`: a quiet unit's part is still written soon after its last event, by the next reader
that computes it, and what is not written is computed again from the rows by whoever needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Protocol, TypeVar

RUNNING_DAY_EVERY_S = 300.0  # a clinic at a busy hour sends an event every half minute or so
MAX_REMEMBERED = 20_000  # (metric, unit, day) written lately; past that, those older than `every_s` go


class _Part(Protocol):
    unit: str
    day: date


P = TypeVar("P", bound=_Part)


class PartWrites:
    """Thread-safe: readers of one process share it."""

    def __init__(self, every_s: float = RUNNING_DAY_EVERY_S, clock_s: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock_s = clock_s
        self._written: dict[tuple[str, str, date], float] = {}
        self._lock = threading.Lock()

    def worth_writing(self, metric: str, parts: Sequence[P], today_of: Callable[[str], date]) -> list[P]:
        """`parts` of `metric` without the running days (today or later in the unit's zone, `today_of`)
        this process wrote less than `every_s` ago; those it returns count as written now."""
        now = self._clock_s()
        chosen = []
        with self._lock:
            for part in parts:
                if part.day < today_of(part.unit):
                    chosen.append(part)
                    continue
                key = (metric, part.unit, part.day)
                last = self._written.get(key)
                if last is not None and now - last < self._every_s:
                    continue
                self._written[key] = now
                chosen.append(part)
            if len(self._written) > MAX_REMEMBERED:
                self._written = {key: at for key, at in self._written.items() if now - at < self._every_s}
        return chosen
