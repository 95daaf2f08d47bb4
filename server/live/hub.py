"""Tell waiting live connections when a unit's figures may have changed.

Several server processes share the work, so the unit that changed may have been ingested by another
process: the hub polls the per-unit data version in the database (cheap, indexed by unit) and also
hears this process's own commits at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..storage.one_of import one_of
from ..storage.tables import UnitActivity
from .feeds import Feeds
from .figures_of import together

log = logging.getLogger("vardkoll.live")


class Subscription:
    def __init__(self, hub: "LiveHub", units: frozenset[str]) -> None:
        self.units = units
        self._hub = hub
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()

    async def wait(self, timeout_s: float) -> bool:
        """True when one of the units changed, False on timeout."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        self._changed.clear()
        return True

    def close(self) -> None:
        self._hub._subscriptions.discard(self)


class LiveHub:
    def __init__(self, sessions: sessionmaker[Session], poll_s: float = 0.25) -> None:
        self._sessions = sessions
        self._poll_s = poll_s
        self._subscriptions: set[Subscription] = set()
        self._versions: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.feeds = Feeds(self.subscribe, together)  # what the streams show, one computation per change for all

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._poll_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    @property
    def open_streams(self) -> int:
        return self.feeds.streams

    def subscribe(self, units: Iterable[str]) -> Subscription:
        subscription = Subscription(self, frozenset(units))
        self._subscriptions.add(subscription)
        return subscription

    def changed_from_any_thread(self, units: set[str]) -> None:
        """Called by this process's ingest after a commit (on its own thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify, set(units))

    def _notify(self, units: set[str]) -> None:
        for subscription in list(self._subscriptions):
            if subscription.units & units:
                subscription.notify()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            watched = set().union(*(s.units for s in self._subscriptions)) if self._subscriptions else set()
            if not watched:
                continue
            try:
                versions = await asyncio.to_thread(self._read_versions, watched)
            except Exception:  # noqa: BLE001  (the database is away; try again next round)
                log.warning("could not read unit versions", exc_info=True)
                continue
            changed = {unit for unit, version in versions.items() if self._versions.get(unit) != version}
            self._versions.update(versions)
            if changed:
                self._notify(changed)

    def _read_versions(self, units: set[str]) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(select(UnitActivity.unit, UnitActivity.version).where(one_of(UnitActivity.unit, sorted(units))))
            return {unit: version for unit, version in rows}
