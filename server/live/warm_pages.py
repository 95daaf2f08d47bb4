"""Keep the figure sets of the pages asked lately current between their requests.

While a country's traffic flows, some unit of a region changes several times a second. Each Regionvy
request found the units changed since the one before (about 30 at two seconds apart) and computed
their figures again in its 17 sets, about 1 ms per changed unit on the page's own time: most of what
the page took beyond its quiet time (py-spy of a web slot, docs/benchmarks.md, "Country traffic").

A page asked lately is kept here: when one of its units changes (the hub tells, as it tells a live
stream), its sets are asked again in the live updates' thread, after the live updates of the same
round (`Feeds.in_turn`), so the next request finds them kept at the newest watermark, or close to it,
and computes only what changed since. Nothing is answered from here: a request still reads the units'
versions and computes every unit whose data moved since its sets were kept (server/figures/cache.py,
"Whole sets"), so the answers are what they were without it, only sooner.

A page not asked for `keep_s` is let go, and at most `max_pages` are kept (the least lately asked
goes first): each costs its sets' refresh after every change of its units.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..metrics import Period
from .hub import LiveHub

log = logging.getLogger("vardkoll.live")

Wanted = tuple[tuple[str, Period], ...]
FigureSets = Callable[[list[str], list[tuple[str, Period]]], Any]  # FigureService.figure_sets

PAUSE_S = 0.25  # at most four refreshes a second per page: the hub's own polling pace
KEEP_S = 300.0  # a reader who asks the same page again within 5 minutes (a reload, back from a unit) finds it kept
MAX_PAGES = 6  # pages of 17 sets each: 102 of the 128 whole sets the figure cache keeps (server/figures/cache.py)


class _Page:
    def __init__(self, units: tuple[str, ...], wanted: Wanted, figure_sets: FigureSets, now: float) -> None:
        self.units = units
        self.wanted = wanted
        self._figure_sets = figure_sets
        self.asked_at = now
        self.task: asyncio.Task[None] | None = None

    def refresh(self) -> bytes:
        """One object per page, so refreshes that wait in the updates' queue together are done once."""
        self._figure_sets(list(self.units), list(self.wanted))
        return b""


class WarmPages:
    """Pages by (units, wanted); registered from any thread, kept from the event loop's."""

    def __init__(
        self,
        hub: LiveHub,
        figure_sets: FigureSets,
        keep_s: float = KEEP_S,
        max_pages: int = MAX_PAGES,
        pause_s: float = PAUSE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._pause_s = pause_s
        self._figure_sets = figure_sets
        self._keep_s = keep_s
        self._max_pages = max_pages
        self._clock = clock
        self._pages: dict[tuple[tuple[str, ...], Wanted], _Page] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refreshes = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    def stop(self) -> None:
        for page in list(self._pages.values()):
            if page.task is not None:
                page.task.cancel()
        self._loop = None

    def holds(self, units: Sequence[str], wanted: Sequence[tuple[str, Period]]) -> bool:
        return (tuple(units), tuple(wanted)) in self._pages

    def asked(self, units: Sequence[str], wanted: Sequence[tuple[str, Period]]) -> None:
        """A page of these sets was answered now (called from the request's thread)."""
        loop = self._loop
        if loop is None or not units:
            return
        try:
            loop.call_soon_threadsafe(self._touch, tuple(units), tuple(wanted))
        except RuntimeError:  # the loop closed meanwhile (the process is stopping)
            pass

    def _touch(self, units: tuple[str, ...], wanted: Wanted) -> None:
        now = self._clock()
        page = self._pages.get((units, wanted))
        if page is not None:
            page.asked_at = now
            return
        if len(self._pages) >= self._max_pages:
            oldest = min(self._pages.values(), key=lambda kept: kept.asked_at)
            self._let_go(oldest)
        page = self._pages[units, wanted] = _Page(units, wanted, self._figure_sets, now)
        page.task = asyncio.get_running_loop().create_task(self._keep(page))

    def _let_go(self, page: _Page) -> None:
        self._pages.pop((page.units, page.wanted), None)
        if page.task is not None:
            page.task.cancel()

    async def _keep(self, page: _Page) -> None:
        subscription = self._hub.subscribe(page.units)
        try:
            while (idle_s := self._keep_s - (self._clock() - page.asked_at)) > 0:
                if not await subscription.wait(idle_s) or self._clock() - page.asked_at >= self._keep_s:
                    continue
                try:
                    await self._hub.feeds.in_turn(page.refresh)
                    self.refreshes += 1
                except Exception:  # noqa: BLE001  (the next request computes what it needs, as without this)
                    log.warning("could not keep a page's figure sets current", exc_info=True)
                # Changes meanwhile wait for the next round: a slot that ingests hears each of its own
                # commits at once, and refreshing after every one would crowd out the live updates.
                await asyncio.sleep(self._pause_s)
        finally:
            subscription.close()
            if self._pages.get((page.units, page.wanted)) is page:
                del self._pages[page.units, page.wanted]
