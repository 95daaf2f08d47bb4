"""What a live stream shows, as a computation that can share its work with others in a batch.

A commit for one unit changes the figures of the unit's Klinikvy feed and of its region's feed. Computed
apart, the second found the unit's new figures in the cache, but still read the units' activity,
devices and dependency versions and went through the figure sets once more: a third of the update.
In a batch, a computation whose units are all among another's, with the same metrics and period, is
cut out of the other's figures (the same figure dicts, so the same bytes as if computed alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable

import orjson

from vardkoll.server.metrics import Period

from ..services import Services


@dataclass(frozen=True, eq=False)
class FiguresOf:
    """The `event: figures` of `units` (each with `metrics`, in that order) for [start, end], or each
    unit's today where either is None."""

    services: Services
    units: tuple[str, ...]
    metrics: tuple[str, ...]
    start: date | None
    end: date | None

    def __call__(self) -> bytes:
        return _event("figures", self.figures())

    def figures(self) -> list[dict[str, Any]]:
        """Unit by unit, metric by metric; asked of the figure service once per period (units in other
        time zones may be on another "today") for all the metrics, so a region's update reads the
        units' freshness once and costs a few queries, not some per unit."""
        by_period: dict[Period, list[str]] = {}
        now = datetime.now(timezone.utc)
        for unit in self.units:
            by_period.setdefault(period_for(self.services, unit, self.start, self.end, now), []).append(unit)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for period, group in by_period.items():
            for metric, figures in zip(self.metrics, self.services.figures.figure_sets(group, [(metric, period) for metric in self.metrics])):
                for unit, figure in zip(group, figures):
                    found[unit, metric] = figure
        return [found[unit, metric] for unit in self.units for metric in self.metrics]

    def covers(self, other: FiguresOf) -> bool:
        """True when `other`'s figures are all among this one's."""
        return (
            other.services is self.services
            and (other.metrics, other.start, other.end) == (self.metrics, self.start, self.end)
            and set(other.units) <= set(self.units)
        )

    def cut(self, figures: list[dict[str, Any]], other: FiguresOf) -> list[dict[str, Any]]:
        """`other`'s figures, out of this one's `figures` (`covers(other)` must hold)."""
        place = {unit: index for index, unit in enumerate(self.units)}
        width = len(self.metrics)
        return [figures[place[unit] * width + m] for unit in other.units for m in range(width)]


def together(computes: list[Callable[[], bytes]]) -> list[bytes | Exception]:
    """A batch of updates (`feeds.Together`): the widest computations first; one that another already
    computed covers is cut out of it. Anything that is not a `FiguresOf` is computed alone."""
    results: list[bytes | Exception] = [RuntimeError("not computed")] * len(computes)
    computed: list[tuple[FiguresOf, list[dict[str, Any]]]] = []
    order = sorted(range(len(computes)), key=lambda i: -len(computes[i].units) if isinstance(computes[i], FiguresOf) else 0)
    for i in order:
        compute = computes[i]
        try:
            if not isinstance(compute, FiguresOf):
                results[i] = compute()
                continue
            wider = next(((of, figures) for of, figures in computed if of.covers(compute)), None)
            if wider is not None:
                figures = wider[0].cut(wider[1], compute)
            else:
                figures = compute.figures()
                computed.append((compute, figures))
            results[i] = _event("figures", figures)
        except Exception as error:  # noqa: BLE001  (that feed's update fails; the others' stand)
            results[i] = error
    return results


def period_for(services: Services, unit: str, start: date | None, end: date | None, now: datetime | None = None) -> Period:
    """[start, end], or the unit's today (as of `now`, default the clock) where either is None."""
    if start is not None and end is not None:
        return Period(start, end)
    today = (now or datetime.now(timezone.utc)).astimezone(services.units.config(unit).tz).date()
    return Period(start or today, end or today)


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
