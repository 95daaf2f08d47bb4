"""Day parts this process computed lately, by the day's version: a Regionvy after a live update reuses them.

While traffic flows, a region's live update computes each changed unit's running day (its part, from
the unit's kept day, `kept_ledgers`), and the next Regionvy needs the same part for the running month.
Since a running day's part is no longer written at every computation (`part_writes`), the page found
it stale in `figure_day_parts` and computed it again: a read of the day's changed rows and the day's
calls counted once more. A part is a pure function of the day's rows and the unit's settings; filed
under the day's version read before the rows and the settings hash, as `day_parts.keep_parts` files it
in the database, it is valid for any reader that read the same version. A reused part is still
offered for writing (`part_writes` decides), so the database gets it once the interval has passed.

Continuity's 18-month sums (`continuity_sums`) and the open cases of an assessment figure (`day_parts`)
are held here too: a unit's live figure of today and its running month on a page of the same day are
as of the same moment, so the second reader takes what the first counted, filed under the unit's
dependency version and the moment.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Any

MAX_PARTS = 20_000  # a part is a few small lists: some MB at most


class RecentParts:
    """A thread-safe LRU of computed day parts; the values are shared: read them, never change them."""

    def __init__(self, max_entries: int = MAX_PARTS) -> None:
        self._max = max_entries
        self._parts: OrderedDict[tuple[str, str, date], tuple[int, str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, metric: str, unit: str, day: date, version: int, settings: str) -> Any | None:
        """The part computed for exactly this version of the day and these settings (for continuity's
        sums and the open cases, of the dependency version and the moment), if still held."""
        with self._lock:
            held = self._parts.get((metric, unit, day))
            if held is None or held[0] != version or held[1] != settings:
                return None
            self._parts.move_to_end((metric, unit, day))
            return held[2]

    def put(self, metric: str, unit: str, day: date, version: int, settings: str, part: Any) -> None:
        with self._lock:
            self._parts[(metric, unit, day)] = (version, settings, part)
            self._parts.move_to_end((metric, unit, day))
            while len(self._parts) > self._max:
                self._parts.popitem(last=False)
