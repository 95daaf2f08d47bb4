"""Answer "the figure for [from, to] as of T" for units, from the stored metric state."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.server.metrics import DEFINITION_VERSIONS, METRICS, Period, UnitConfig, end_of_day

from vardkoll.server.metrics.continuity import coc_window

from ..storage.registry_tables import DeviceRow
from ..storage.stamp_keys import from_epoch_us
from ..storage.tables import UnitActivity
from ..units import UnitDirectory
from .cache import FigureCache, data_version, figure_key, settings_stamp
from .loading import load_calls, load_cases, load_snapshots, load_visits


class FigureService:
    def __init__(self, sessions: sessionmaker[Session], units: UnitDirectory, cache: FigureCache | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        """`cache`: computed figures by data version (see `cache`); the default holds 20 000, `FigureCache(0)` none.
        `clock` tells which periods are settled (see `cache`)."""
        self._sessions = sessions
        self._units = units
        self._clock = clock
        self.cache = cache if cache is not None else FigureCache()

    def figure(self, unit: str, metric: str, period: Period, as_of: datetime | None = None, cached: bool = True) -> dict[str, Any]:
        """The SPEC 2.5 figure, as `vardkoll replay` gives it, plus its definition version and data freshness."""
        return self.figures([unit], metric, period, as_of, cached)[0]

    def figures(
        self, units: list[str], metric: str, period: Period, as_of: datetime | None = None, cached: bool = True
    ) -> list[dict[str, Any]]:
        """`cached=False` computes every figure from the stored rows (the cache is neither read nor filled)."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")
        results = []
        with self._sessions() as session:
            # Versions first, rows after: a figure is never older than the version it is cached under.
            activity = self._activity(session, units)
            freshness = self._freshness(session, units, activity)
            now = self._clock()
            for unit in units:
                config = self._units.config(unit, period.end)
                key = figure_key(unit, metric, period, as_of)
                version = data_version(activity.get(unit), period, as_of, config, now)
                stamp = settings_stamp(config)
                figure = self.cache.get(key, version, stamp) if cached else None
                if figure is None:
                    figure = self._compute(session, unit, metric, period, as_of, config)
                    if cached:
                        self.cache.put(key, version, stamp, figure)
                figure["data"] = freshness[unit]
                results.append(figure)
        return results

    def series(self, unit: str, metric: str, periods: Sequence[Period]) -> list[dict[str, Any]]:
        """`figure(unit, metric, p)` for each of `periods` (each as of its end, as the API's default),
        equal to asking one by one, but the stored rows are loaded once for all the periods that the
        cache cannot answer, instead of once per period (a trend of 12 weeks and 12 months)."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")
        results: list[dict[str, Any] | None] = []
        with self._sessions() as session:
            activity = self._activity(session, [unit])
            freshness = self._freshness(session, [unit], activity)[unit]
            now = self._clock()
            configs = [self._units.config(unit, period.end) for period in periods]
            versions = [data_version(activity.get(unit), period, None, config, now) for period, config in zip(periods, configs)]
            for period, config, version in zip(periods, configs, versions):
                results.append(self.cache.get(figure_key(unit, metric, period, None), version, settings_stamp(config)))
            missing = [i for i, figure in enumerate(results) if figure is None]
            if missing:
                ledger = _covering_ledger(session, unit, metric, [periods[i] for i in missing], configs[missing[-1]])
                for i in missing:
                    period, config = periods[i], configs[i]
                    figure = self._compute(session, unit, metric, period, None, config) if ledger is None else \
                        ledger.figure(unit, period, end_of_day(period.end, config.tz), config)
                    figure["definition_version"] = DEFINITION_VERSIONS[metric]
                    self.cache.put(figure_key(unit, metric, period, None), versions[i], settings_stamp(config), figure)
                    results[i] = figure
        for figure in results:
            figure["data"] = dict(freshness)  # type: ignore[index]
        return results  # type: ignore[return-value]

    @staticmethod
    def _compute(session: Session, unit: str, metric: str, period: Period, as_of: datetime | None, config: UnitConfig) -> dict[str, Any]:
        moment = as_of or end_of_day(period.end, config.tz)
        if metric == "telephone":
            ledger: Any = load_calls(session, unit, period, config)
        elif metric == "assessment":
            ledger = load_cases(session, unit, period, moment, config)
        elif metric == "fixed_doctor":
            ledger = load_snapshots(session, unit, min(moment, end_of_day(period.end, config.tz)))
        else:
            ledger = load_visits(session, unit, period)
        figure = ledger.figure(unit, period, moment, config)
        figure["definition_version"] = DEFINITION_VERSIONS[metric]
        return figure

    @staticmethod
    def _activity(session: Session, units: list[str]) -> dict[str, UnitActivity]:
        return {row.unit: row for row in session.scalars(select(UnitActivity).where(UnitActivity.unit.in_(units)))}

    def _freshness(self, session: Session, units: list[str], activity: dict[str, UnitActivity]) -> dict[str, dict[str, Any]]:
        """How fresh the data behind a unit's figures is: silence is "no data", never "compliant"."""
        devices: dict[str, list[DeviceRow]] = {}
        for row in session.scalars(select(DeviceRow).where(DeviceRow.unit.in_(units), DeviceRow.retired_at.is_(None))):
            devices.setdefault(row.unit, []).append(row)
        result = {}
        for unit in units:
            seen = activity.get(unit)
            unit_devices = devices.get(unit, [])
            result[unit] = {
                "no_data": seen is None,
                "last_event_at": from_epoch_us(seen.last_event_at_us).isoformat() if seen and seen.last_event_at_us is not None else None,
                "last_received_at": _iso(seen.last_received_at) if seen else None,
                "devices": len(unit_devices),
                "devices_offline": sorted(d.device for d in unit_devices if d.status == "offline"),
                "devices_silent": sorted(d.device for d in unit_devices if d.status == "silent"),
            }
        return result


def _covering_ledger(session: Session, unit: str, metric: str, periods: list[Period], config: UnitConfig) -> Any:
    """One ledger holding every stored row that any of `periods` needs (each figure filters by its own
    period and moment, so extra rows change nothing); None for `fixed_doctor`, whose figure reads one
    snapshot row per period anyway."""
    covering = Period(min(p.start for p in periods), max(p.end for p in periods))
    if metric == "telephone":
        return load_calls(session, unit, covering, config)
    if metric == "assessment":
        # The cases open at the latest moment, plus those contacted or assessed in the covering
        # period: that includes every case open at an earlier period's end (assessed later, so inside it).
        return load_cases(session, unit, covering, end_of_day(covering.end, config.tz), config)
    if metric == "continuity":
        return load_visits(session, unit, covering, since=min(coc_window(p.end).start for p in periods))
    return None


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()
