"""The unit registry as the metric rules need it: a UnitConfig per unit and period, cached briefly.

Several server processes share one database, so a change made through another process shows here
within `ttl_s` seconds. A unit's config for a day is built once per load and then shared (a Regionvy
page asks for 230 units' configs in each of its 17 sets): read it, never change it. So are its units:
plain frozen copies of their rows (`UnitEntry`), a region's sorted once per load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import date
from types import MappingProxyType
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.protocol.local_time import parse_opening_hours_text

from ..metrics import DEFAULT_TARGETS, UnitConfig
from ..storage.registry_tables import TargetRow, UnitRow


MAX_CONFIGS = 100_000  # (unit, day) pairs kept between loads: a year of days for 270 units; then begun again


@dataclass(frozen=True, slots=True)
class UnitEntry:
    """A unit's registry row as read at the last load, detached and read-only. Not the ORM row: a
    Regionvy reads a few fields of 230 units many times over (table, sort, filters, region figures,
    links), and each read of an ORM attribute went through SQLAlchemy's instrumentation (about 3 ms
    of a warm page, py-spy 2026-12-07)."""

    unit: str
    name: str
    region: str
    time_zone: str
    opening_hours: str | None
    unreached_callback_counts: bool
    ownership: str | None
    municipality_code: str | None
    listed_patients: int | None

    @classmethod
    def of(cls, row: UnitRow) -> "UnitEntry":
        return cls(*(getattr(row, field.name) for field in fields(cls)))


class UnitDirectory:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 30.0, clock_s: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._clock_s = clock_s
        self._loaded_at = float("-inf")
        self._units: dict[str, UnitEntry] = {}
        self._regions: dict[str, tuple[UnitEntry, ...]] = {}
        self._targets: dict[tuple[str, str], list[TargetRow]] = {}
        self._content: tuple = ()
        self._generation = 0
        self._configs: dict[tuple[str, date | None], UnitConfig] = {}

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def _fresh(self) -> None:
        if self._clock_s() - self._loaded_at < self._ttl_s:
            return
        with self._sessions() as session:
            units = sorted((UnitEntry.of(row) for row in session.scalars(select(UnitRow))), key=lambda entry: entry.unit)
            regions: dict[str, list[UnitEntry]] = {}
            for entry in units:
                regions.setdefault(entry.region, []).append(entry)
            self._units = {entry.unit: entry for entry in units}
            self._regions = {region: tuple(entries) for region, entries in regions.items()}
            targets: dict[tuple[str, str], list[TargetRow]] = {}
            for row in session.scalars(select(TargetRow).order_by(TargetRow.valid_from)):
                targets.setdefault((row.unit, row.metric), []).append(row)
            self._targets = targets
            self._configs = {}  # after the rows (see `config`)
            content = (
                tuple((r.unit, r.region, r.time_zone, r.opening_hours, r.unreached_callback_counts) for r in units),
                tuple((r.unit, r.metric, r.target, r.valid_from, r.valid_to) for key in sorted(targets) for r in targets[key]),
            )
            if content != self._content:
                self._content = content
                self._generation += 1
        self._loaded_at = self._clock_s()

    @property
    def generation(self) -> int:
        """A number that changes whenever a reload finds any unit's settings or targets changed (and
        only then): what a cache of many units' figures is filed under instead of each unit's config."""
        self._fresh()
        return self._generation

    def row(self, unit: str) -> UnitEntry | None:
        self._fresh()
        return self._units.get(unit)

    def units_of_region(self, region: str) -> list[str]:
        self._fresh()
        return [entry.unit for entry in self._regions.get(region, ())]

    def rows_of_region(self, region: str) -> list[UnitEntry]:
        """The region's units in the order of `units_of_region`."""
        self._fresh()
        return list(self._regions.get(region, ()))

    def all_units(self) -> list[str]:
        self._fresh()
        return sorted(self._units)

    def target(self, unit: str, metric: str, on: date) -> float | None:
        """The target valid on `on` (a period's last day); the default target when none is set."""
        self._fresh()
        chosen = DEFAULT_TARGETS.get(metric)
        for row in self._targets.get((unit, metric), []):
            if row.valid_from <= on and (row.valid_to is None or on <= row.valid_to):
                chosen = row.target
        return chosen

    def config(self, unit: str, on: date | None = None) -> UnitConfig:
        """The unit's config with the targets valid on `on` (the defaults without it): one shared,
        read-only value per unit and day until the next load."""
        self._fresh()
        # Taken before the rows are read: a load replaces the rows first and this dict after, so a
        # config built from rows a load has just replaced lands in the dict that load discarded.
        configs = self._configs
        config = configs.get((unit, on))
        if config is None:
            if len(configs) >= MAX_CONFIGS:
                configs.clear()
            config = configs[unit, on] = self._build_config(unit, on)
        return config

    def _build_config(self, unit: str, on: date | None) -> UnitConfig:
        row = self._units.get(unit)
        targets = MappingProxyType({metric: self.target(unit, metric, on) for metric in DEFAULT_TARGETS} if on else dict(DEFAULT_TARGETS))
        if row is None:
            return UnitConfig(targets=targets)
        hours = parse_opening_hours_text(row.opening_hours)
        return UnitConfig(
            time_zone=row.time_zone,
            targets=targets,
            opening_hours=None if hours is None else MappingProxyType(hours),
            unreached_callback_counts=row.unreached_callback_counts,
        )
