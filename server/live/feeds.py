"""One computation per change for all the streams of a process that show the same figures.

Streams that ask for the same units, metrics and period share a feed. Five open Klinikvy pages of
one clinic, or an office screen and a manager's laptop, are such streams. When one of the feed's
units changes, its figures are computed once, in a worker thread, and the same bytes go to every
stream of the feed. Without feeds, 500 streams over 100 units computed the same figures five times
over at 1 000 events/s; the process fell behind by seconds (docs/benchmarks.md, "Event to live
figure").

A feed computes at most one update at a time: changes that arrive meanwhile make one more update
after it. A stream that is slower than the feed skips to the newest figures. A feed ends with its
last stream.

The updates of all feeds of a process are computed one after another, in one thread. The work is
Python under one interpreter lock, so more threads only took turns and fought over it, and two
feeds that show the same unit (its Klinikvy and its region's page) computed its new figures twice
at once. One after the other, the second finds them in the figure cache. The same bench with one
thread against six: live p99 107 against 1 400 ms on SQLite, 225 against 1 000 ms on PostgreSQL
(two threads: 238 and 368 ms). A feed's first figures, which may be a cold region, are computed in
the shared pool instead, so that opening a stream never holds up the updates of the others.

The updates waiting when that thread is free are computed as one batch (`Together`): a unit's
Klinikvy feed and its region's feed, changed by the same commit, are then one computation of the
region's figures, the unit's cut out of them (server/live/figures_of.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("vardkoll.live")

Subscribe = Callable[[Iterable[str]], Any]  # LiveHub.subscribe: a Subscription to the units' changes
Compute = Callable[[], bytes]
# Computes a batch of feeds' updates: per computation its bytes, or the exception it raised.
Together = Callable[[list[Compute]], list["bytes | Exception"]]
_UPDATES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-updates")


def each_alone(computes: list[Compute]) -> list[bytes | Exception]:
    """The batch computed one by one: what a batch of computations that share nothing comes to."""
    results: list[bytes | Exception] = []
    for compute in computes:
        try:
            results.append(compute())
        except Exception as error:  # noqa: BLE001  (that feed's update fails; the others' stand)
            results.append(error)
    return results


class _Updates:
    """The feeds' updates, computed in the updates thread in batches of those waiting when it is free."""

    def __init__(self, together: Together) -> None:
        self._together = together
        self._waiting: dict[Compute, list[asyncio.Future[bytes]]] = {}
        self._running = False
        self._drainer: asyncio.Task[None] | None = None  # held: the loop keeps only a weak reference to a task

    async def compute(self, compute: Compute) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(compute, []).append(future)
        if not self._running:
            self._running = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                computes = list(batch)
                try:
                    results = await asyncio.get_running_loop().run_in_executor(_UPDATES, self._together, computes)
                except Exception as error:  # noqa: BLE001  (every feed of the batch keeps its last figures)
                    results = [error] * len(computes)
                for compute, result in zip(computes, results):
                    for future in batch[compute]:
                        if future.done():  # its feed was closed meanwhile
                            continue
                        if isinstance(result, Exception):
                            future.set_exception(result)
                        else:
                            future.set_result(result)
        finally:
            self._running = False


class Feed:
    """The newest figures of one (units, metrics, period) as `event: figures` bytes, and their generation."""

    def __init__(self, subscription: Any, compute: Compute, updates: _Updates) -> None:
        self._subscription = subscription
        self._compute = compute
        self._updates = updates
        self._payload = b""
        self._generation = 0
        self._failure: BaseException | None = None  # the first computation's: no figures to show at all
        self._published = asyncio.Event()
        self.streams = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def first(self) -> tuple[bytes, int]:
        """The newest figures, once there are any."""
        while True:
            found = await self.newer_than(0, None)
            if found is not None:
                return found

    async def newer_than(self, generation: int, timeout_s: float | None) -> tuple[bytes, int] | None:
        """The figures after `generation` (0: the first ones), or None when none came within `timeout_s`."""
        if self._generation <= generation and self._failure is None:
            published = self._published
            try:
                await asyncio.wait_for(published.wait(), timeout_s)
            except asyncio.TimeoutError:
                return None
        if self._failure is not None:
            raise self._failure
        return self._payload, self._generation

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def close(self) -> None:
        self._task.cancel()
        self._subscription.close()

    async def _run(self) -> None:
        try:
            self._publish(await asyncio.to_thread(self._compute))
        except Exception as error:  # noqa: BLE001  (every stream of the feed ends with it, as a stream's own failure did)
            self._failure = error
            self._wake()
            return
        while True:
            await self._subscription.wait(None)
            try:
                self._publish(await self._updates.compute(self._compute))
            except Exception:  # noqa: BLE001  (the streams keep their last figures; the next change tries again)
                log.warning("could not compute a live update", exc_info=True)

    def _publish(self, payload: bytes) -> None:
        self._payload, self._generation = payload, self._generation + 1
        self._wake()

    def _wake(self) -> None:
        published, self._published = self._published, asyncio.Event()
        published.set()


class Feeds:
    """The feeds of one process, by what they show; used from the event loop's thread only."""

    def __init__(self, subscribe: Subscribe, together: Together = each_alone) -> None:
        """`together`: how a batch of updates is computed (the streams': `figures_of.together`)."""
        self._subscribe = subscribe
        self._feeds: dict[Hashable, Feed] = {}
        self._updates = _Updates(together)

    @property
    def streams(self) -> int:
        return sum(feed.streams for feed in self._feeds.values())

    def join(self, key: Hashable, units: list[str], compute: Compute) -> Feed:
        """The feed of `key` (made, with a subscription to `units`' changes, if no stream has it open)."""
        feed = self._feeds.get(key)
        if feed is None or feed.failed:  # a failed feed ends with its streams; a new stream tries again
            feed = self._feeds[key] = Feed(self._subscribe(units), compute, self._updates)
        feed.streams += 1
        return feed

    def leave(self, key: Hashable, feed: Feed) -> None:
        feed.streams -= 1
        if feed.streams == 0:
            feed.close()
            if self._feeds.get(key) is feed:
                del self._feeds[key]
