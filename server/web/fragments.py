"""Regionvy's rows rendered once per content and kept, per process.

A Regionvy of 230 units renders 230 table rows and 230 small multiples: about 30 ms of a warm page of
80 ms (bench/dashboard_pages.py), the same on every request, while most units' figures are unchanged.
Each row is rendered by a macro of `_region_rows.html` and kept under a key made of exactly what that
macro reads; a row whose key is kept is reused as it was rendered. So the key functions here and the
macros must read the same fields: `tests/web/test_region_fragments.py` renders rows that differ in each
field and fails when two rows that render differently share a key. A row object kept whole by
`region_rows` also keeps its fragments with it, so an unchanged row needs no key at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

from markupsafe import Markup

from vardkoll.server.metrics import METRICS

from .region_rows import RegionRow

MAX_FRAGMENTS = 4_096  # rows of about 1-2 KB: a few MB; a region of 230 units in several periods and orders


class FragmentCache:
    """A bounded LRU of rendered rows by key (thread-safe: pages are built in the thread pool)."""

    def __init__(self, max_entries: int = MAX_FRAGMENTS) -> None:
        self.max_entries = max_entries
        self._kept: OrderedDict[Hashable, Markup] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_render(self, key: Hashable, render: Callable[[], Any]) -> Markup:
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                self.hits += 1
                return kept
        html = Markup(render())  # outside the lock: two threads may render the same row, both right
        with self._lock:
            self.misses += 1
            self._kept[key] = html
            self._kept.move_to_end(key)
            while len(self._kept) > self.max_entries:
                self._kept.popitem(last=False)
        return html


def _cell(figure: dict[str, Any]) -> tuple[Any, ...]:
    """What `_region_rows.html` reads of a figure (share, status, small, the ratio)."""
    return (figure["data"]["no_data"], figure["share"], figure["meets_target"], figure["details"].get("small_n"), figure["numerator"], figure["denominator"])


def table_row_key(row: RegionRow, profile_href: str) -> Hashable:
    return ("table", row.unit.unit, row.unit.name, profile_href, tuple(_cell(row.figures[m]) for m in METRICS))


def multiple_key(row: RegionRow, title: str) -> Hashable:
    return ("multiple", row.unit.unit, row.unit.name, title, tuple(row.months), (*_cell(row.year), row.year["target"]))


FRAGMENTS = FragmentCache()


def table_row(macro: Callable[..., Any], row: RegionRow, profile_href: str) -> Markup:
    return _of_row(row, ("table", profile_href), lambda: FRAGMENTS.get_or_render(table_row_key(row, profile_href), lambda: macro(row, profile_href)))


def multiple(macro: Callable[..., Any], row: RegionRow, title: str) -> Markup:
    return _of_row(row, ("multiple", title), lambda: FRAGMENTS.get_or_render(multiple_key(row, title), lambda: macro(row, title)))


def _of_row(row: RegionRow, what: Hashable, fragment: Callable[[], Markup]) -> Markup:
    """The fragment as rendered for this row object: a row kept by `region_rows` is the same object only
    while everything it shows is, so its fragments need no key of their content (computing those keys
    was a tenth of a warm Regionvy)."""
    html = row.rendered.get(what)
    if html is None:
        html = row.rendered[what] = fragment()
    return html


__all__ = ["FRAGMENTS", "FragmentCache", "multiple", "multiple_key", "table_row", "table_row_key"]
