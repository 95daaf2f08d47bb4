"""The server-sent event stream of figures for a set of units."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


async def figure_events(
    services: Services, hub: LiveHub, units: list[str], metrics: list[str], start: date | None = None, end: date | None = None
) -> AsyncIterator[bytes]:
    """First the current figures, then new ones whenever a unit's data changes; a comment line
    keeps the connection open through proxies when nothing happens."""
    subscription = hub.subscribe(units)
    try:
        yield _event("figures", await asyncio.to_thread(_figures, services, units, metrics, start, end))
        while True:
            if await subscription.wait(HEARTBEAT_S):
                yield _event("figures", await asyncio.to_thread(_figures, services, units, metrics, start, end))
            else:
                yield b": keep-alive\n\n"
    finally:
        subscription.close()
