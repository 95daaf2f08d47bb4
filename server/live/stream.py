"""The server-sent event stream of figures for a set of units."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from datetime import date

from ..services import Services
from .figures_of import FiguresOf, period_for
from .hub import LiveHub

HEARTBEAT_S = 15.0


def _feed_key(services: Services, units: list[str], metrics: list[str], start: date | None, end: date | None) -> Hashable:
    """What a stream shows: with "today" in it, each unit's date now, so that a stream opened after
    midnight gets a feed of its own instead of one still showing yesterday."""
    days = tuple(period_for(services, unit, start, end) for unit in units) if start is None or end is None else (start, end)
    return tuple(units), tuple(metrics), days


async def figure_events(
    services: Services, hub: LiveHub, units: list[str], metrics: list[str], start: date | None = None, end: date | None = None
) -> AsyncIterator[bytes]:
    """First the current figures, then new ones whenever a unit's data changes; a comment line
    keeps the connection open through proxies when nothing happens. Streams that show the same
    figures share one computation per change (`feeds`)."""
    key = _feed_key(services, units, metrics, start, end)
    feed = hub.feeds.join(key, units, FiguresOf(services, tuple(units), tuple(metrics), start, end))
    try:
        payload, generation = await feed.first()
        yield payload
        while True:
            newer = await feed.newer_than(generation, HEARTBEAT_S)
            if newer is None:
                yield b": keep-alive\n\n"
            else:
                payload, generation = newer
                yield payload
    finally:
        hub.feeds.leave(key, feed)
