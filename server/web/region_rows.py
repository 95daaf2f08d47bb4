"""Regionvy's rows kept per unit, rebuilt only for the units whose figures are new objects.

A Regionvy of 230 units has 17 sets of figures (the table's four metrics, twelve months and the year of
the chosen one). Copying 3 910 figures, making 2 760 chart points and computing two fragment keys per
row was about a third of a page whose figures had not changed at all (py-spy, 2026-12-07), and the
same again on every request while the traffic changed a few units between two requests.

`FigureService.kept_figure_sets` gives the cache's kept figures themselves: a figure whose unit has no
new data since its set was last answered is the same object as then. A row is kept under its unit and
what the page asks (period, chosen metric, year) with exactly the objects it was built from (the unit's
registry entry, its 17 figures and its `data` block), compared by identity: while every one is the same
object the row, and the fragments rendered from it, are what building it again would give. The kept
objects are held by the row, so an identity can never be that of a new object at a reused address.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

from markupsafe import Markup

from vardkoll.server.metrics import METRICS, Period

from ..figures.cache import ReadOnlyDict
from ..registry import UnitEntry
from .charts import TrendPoint
from .trends import TrendPeriod, point

MAX_ROWS = 4_096  # a region of 230 units in a dozen periods and chosen metrics; a row's own parts are a few KB (its figures are mostly the figure cache's)


@dataclass
class UnitFigures:
    unit: UnitEntry
    figures: dict[str, dict[str, Any]]  # every metric, the period


@dataclass
class RegionRow(UnitFigures):
    year: dict[str, Any]  # the chosen metric, 1 January to the period's end
    months: list[TrendPoint]  # the chosen metric, the 12 months up to the period's end
    # Its fragments as rendered (server/web/fragments.py), by what else they show: kept with the row.
    rendered: dict[Hashable, Markup] = field(default_factory=dict, compare=False, repr=False)


class RegionRows:
    """A bounded LRU of built rows (thread-safe: pages are built in the thread pool; two threads that
    build the same row both build it right)."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self._kept: OrderedDict[Hashable, tuple[tuple[Any, ...], RegionRow]] = OrderedDict()
        self._lock = threading.Lock()
        self.reused = 0
        self.built = 0

    def rows(
        self,
        units: Sequence[UnitEntry],
        sets: Sequence[Sequence[dict[str, Any]]],
        blocks: Sequence[dict[str, Any]],
        period: Period,
        chosen: str,
        months: Sequence[TrendPeriod],
        year: Period,
    ) -> list[RegionRow]:
        """Each unit's row, in the order of `units`. `sets`: the kept figures of the table's metrics for
        `period` (in `METRICS` order), then of `chosen` for each of `months` and for `year`."""
        by_metric, by_period = sets[: len(METRICS)], sets[len(METRICS) :]
        result = []
        for i, unit in enumerate(units):
            sources = (unit, blocks[i], *(figures[i] for figures in sets))
            key = (unit.unit, period, chosen, year)
            with self._lock:
                kept = self._kept.get(key)
                if kept is not None and len(kept[0]) == len(sources) and all(a is b for a, b in zip(kept[0], sources)):
                    self._kept.move_to_end(key)
                    self.reused += 1
                    result.append(kept[1])
                    continue
            row = _built(unit, blocks[i], [figures[i] for figures in by_metric], [figures[i] for figures in by_period], months)
            with self._lock:
                self.built += 1
                self._kept[key] = (sources, row)
                self._kept.move_to_end(key)
                while len(self._kept) > self.max_rows:
                    self._kept.popitem(last=False)
            result.append(row)
        return result


def _built(unit: UnitEntry, block: dict[str, Any], table: list[dict[str, Any]], series: list[dict[str, Any]], months: Sequence[TrendPeriod]) -> RegionRow:
    """A row from kept figures: each shown figure with its `data` block, read-only (the row is shared by
    every request that finds it kept)."""
    return RegionRow(
        unit,
        {m: _shown(figure, block) for m, figure in zip(METRICS, table)},
        _shown(series[-1], block),
        [point(p, figure) for p, figure in zip(months, series)],
    )


def _shown(figure: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    return ReadOnlyDict({**figure, "data": block})


ROWS = RegionRows()

__all__ = ["ROWS", "RegionRow", "RegionRows", "UnitFigures"]
