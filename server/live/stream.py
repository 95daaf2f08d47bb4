"""The server-sent event stream of figures for a set of units."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from datetime import date, datetime, timezone
from typing import Any

import orjson

from vardkoll.server.metrics import Period

from ..services import Services
from .hub import LiveHub

HEARTBEAT_S = 15.0


def _period_for(services: Services, unit: str, start: date | None, end: date | None) -> Period:
    if start is not None and end is not None:
        return Period(start, end)
    today = datetime.now(timezone.utc).astimezone(services.units.config(unit).tz).date()
    return Period(start or today, end or today)


def _figures(services: Services, units: list[str], metrics: list[str], start: date | None, end: date | None) -> list[dict[str, Any]]:
    """Unit by unit, metric by metric; asked of the figure service once per period (units in other
    time zones may be on another "today") for all the metrics, so a region's update reads the units'
    freshness once and costs a few queries, not some per unit."""
    by_period: dict[Period, list[str]] = {}
    for unit in units:
        by_period.setdefault(_period_for(services, unit, start, end), []).append(unit)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for period, group in by_period.items():
        for metric, figures in zip(metrics, services.figures.figure_sets(group, [(metric, period) for metric in metrics])):
            for unit, figure in zip(group, figures):
                found[unit, metric] = figure
    return [found[unit, metric] for unit in units for metric in metrics]


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _feed_key(services: Services, units: list[str], metrics: list[str], start: date | None, end: date | None) -> Hashable:
    """What a stream shows: with "today" in it, each unit's date now, so that a stream opened after
    midnight gets a feed of its own instead of one still showing yesterday."""
    days = tuple(_period_for(services, unit, start, end) for unit in units) if start is None or end is None else (start, end)
    return tuple(units), tuple(metrics), days


async def figure_events(
    services: Services, hub: LiveHub, units: list[str], metrics: list[str], start: date | None = None, end: date | None = None
) -> AsyncIterator[bytes]:
    """First the current figures, then new ones whenever a unit's data changes; a comment line
    keeps the connection open through proxies when nothing happens. Streams that show the same
    figures share one computation per change (`feeds`)."""
    key = _feed_key(services, units, metrics, start, end)
    feed = hub.feeds.join(key, units, lambda: _event("figures", _figures(services, units, metrics, start, end)))
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
