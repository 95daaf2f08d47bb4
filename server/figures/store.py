"""Figures kept in the database (`stored_figures`): the rollups every server process shares.

A figure "as known at T" is a pure function of the unit's settings and of the unit's events of its
metric at or before T (each event class feeds one metric's ledger: `METRIC_OF_CLASS`).

Dependency versions: ingest records, per unit and UTC date, the unit version of the last commit
that stored an event of that date, and for each metric of the last commit that stored an event of
that metric there (`unit_day_versions`), so the newest of a metric's versions among the dates up to
T's is the figure's *dependency version*: while it and the settings are unchanged, the stored figure
is exact. Today's events leave last month's figures valid, a late event of last month does not, and
a unit's calls leave its continuity, fixed-doctor and 3-day figures valid. Where a row's metric
versions are not exact (written or bumped by a release before them, see `UnitDayVersion`), its
version counts for every metric, as it did before.

Only figures at the end of their period (`as_of` not given) are stored: those are the ones dashboards,
exports and the rollup job ask for again and again. A release that changes how a figure is computed
bumps the metric's definition version (server/metrics/config.py) or `STORE_FORMAT` below, either of
which makes every stored figure of that metric stale.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from datetime import date, datetime, timezone
from typing import Any, Callable, Hashable, Sequence

import orjson
from sqlalchemy import and_, case, delete, func, literal_column, select
from sqlalchemy.orm import Session

from vardkoll.server.metrics import DEFINITION_VERSIONS, Period

from ..storage.one_of import one_of
from ..storage.upsert import dialect_insert
from ..storage.tables import StoredFigure, UnitDayVersion

STORE_FORMAT = 1


def settings_hash(metric: str, stamp: Hashable) -> str:
    """The settings stamp (server/figures/cache.py) with the metric's definition version, as text."""
    return hashlib.sha256(repr((STORE_FORMAT, DEFINITION_VERSIONS[metric], stamp)).encode()).hexdigest()


@lru_cache(maxsize=None)
def day_version(metric: str | None) -> Any:
    """A day's version for `metric`'s figures (None: any metric's), as a column expression; built once
    (a live update asks for it several times, and building the CASE cost more than the query)."""
    if metric is None:
        return UnitDayVersion.version
    exact = and_(UnitDayVersion.metrics_version.is_not(None), UnitDayVersion.metrics_version == UnitDayVersion.version)
    return case((exact, func.coalesce(getattr(UnitDayVersion, f"{metric}_version"), 0)), else_=UnitDayVersion.version)


def dependency_versions(session: Session, units: list[str], through: date, metric: str | None) -> dict[str, int]:
    """Per unit, the newest version among its UTC dates up to `through` (0: no event on those dates),
    of `metric`'s events, or of any event when `metric` is None."""
    return dependency_versions_of_sets(session, [(units, through, metric)])[0]


def dependency_versions_of_sets(session: Session, wanted: Sequence[tuple[Sequence[str], date, str | None]]) -> list[dict[str, int]]:
    """`dependency_versions(session, units, through, metric)` for each (units, through, metric) of
    `wanted`, in one query: a page's sets (12 months, the year, the running month) each ask for a few
    changed units, and one round trip under load costs more than the query.

    Each day is put in the bucket of the first `through` it does not exceed, the newest version per
    unit, bucket and metric is read, and a set's version is the newest over its buckets."""
    asked = [(list(units), through, metric) for units, through, metric in wanted if units]
    if not asked:
        return [{} for _ in wanted]
    bounds = sorted({through for _, through, _ in asked})
    metrics = sorted({metric for _, _, metric in asked}, key=str)
    whens = [(UnitDayVersion.day <= bound, index) for index, bound in enumerate(bounds[:-1])]
    # Grouped by the label: PostgreSQL would not match the CASE of the select list to one repeated in
    # GROUP BY, whose bound parameters get other placeholders. With one date, by unit alone: SQLite then
    # groups in the order of the primary key instead of sorting.
    bucket, grouping = (case(*whens, else_=len(bounds) - 1), [literal_column("bucket")]) if whens else (literal_column("0"), [])
    rows = session.execute(
        select(UnitDayVersion.unit, bucket.label("bucket"), *(func.max(day_version(metric)) for metric in metrics))
        .where(one_of(UnitDayVersion.unit, sorted({unit for units, _, _ in asked for unit in units})), UnitDayVersion.day <= bounds[-1])
        .group_by(UnitDayVersion.unit, *grouping)
    ).all()
    newest: dict[tuple[str, str | None], list[int]] = {}
    for unit, index, *versions in rows:
        for metric, version in zip(metrics, versions):
            per_bucket = newest.setdefault((unit, metric), [0] * len(bounds))
            per_bucket[index] = version or 0
    answers = []
    for units, through, metric in wanted:
        last = bounds.index(through) + 1 if units else 0
        answers.append({unit: max(newest.get((unit, metric), [0])[:last], default=0) for unit in units})
    return answers


def unit_dependency_versions(session: Session, unit: str, throughs: list[date], metric: str) -> list[int]:
    """One unit's dependency version for `metric` for each of several dates (one query for a whole trend)."""
    if not throughs:
        return []
    query = select(UnitDayVersion.day, day_version(metric)).where(UnitDayVersion.unit == unit, UnitDayVersion.day <= max(throughs))
    rows = session.execute(query).all()
    return [max((version for day, version in rows if day <= through), default=0) for through in throughs]


def last_utc_date(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()


def load_stored(session: Session, units: list[str], metric: str, period: Period) -> dict[str, tuple[str, int, dict[str, Any]]]:
    """unit -> (settings hash, version, figure) of the stored figures for these units."""
    rows = session.execute(
        select(StoredFigure.unit, StoredFigure.settings, StoredFigure.version, StoredFigure.body).where(
            one_of(StoredFigure.unit, units),
            StoredFigure.metric == metric,
            StoredFigure.period_from == period.start,
            StoredFigure.period_to == period.end,
        )
    )
    return {unit: (settings, version, orjson.loads(body)) for unit, settings, version, body in rows}


def load_stored_periods(session: Session, unit: str, metric: str, periods: list[Period]) -> dict[Period, tuple[str, int, dict[str, Any]]]:
    """period -> (settings hash, version, figure) of one unit's stored figures for these periods (one query)."""
    if not periods:
        return {}
    wanted = set(periods)
    rows = session.execute(
        select(StoredFigure.period_from, StoredFigure.period_to, StoredFigure.settings, StoredFigure.version, StoredFigure.body).where(
            StoredFigure.unit == unit,
            StoredFigure.metric == metric,
            StoredFigure.period_from >= min(p.start for p in periods),
            StoredFigure.period_to <= max(p.end for p in periods),
        )
    )
    found = {}
    for start, end, settings, version, body in rows:
        period = Period(start, end)
        if period in wanted:
            found[period] = (settings, version, orjson.loads(body))
    return found


def prune_stored(session: Session, keep: Callable[[Period], bool], older_than: datetime) -> int:
    """Delete stored figures computed before `older_than` whose period `keep` does not want kept
    (ad-hoc periods someone asked for once); returns how many. They are computed again if asked."""
    rows = session.execute(
        select(StoredFigure.unit, StoredFigure.metric, StoredFigure.period_from, StoredFigure.period_to).where(StoredFigure.computed_at < older_than)
    ).all()
    doomed = [row for row in rows if not keep(Period(row.period_from, row.period_to))]
    for unit, metric, start, end in doomed:
        session.execute(
            delete(StoredFigure).where(
                StoredFigure.unit == unit, StoredFigure.metric == metric, StoredFigure.period_from == start, StoredFigure.period_to == end
            )
        )
    return len(doomed)


def save_stored(session: Session, metric: str, period: Period, figures: list[tuple[str, str, int, dict[str, Any]]], now: datetime) -> None:
    """Upsert (unit, settings hash, version, figure without its `data` block) rows; a row computed at
    an older version never replaces a newer one."""
    table = StoredFigure.__table__
    stmt = dialect_insert(session, table)
    newer = stmt.excluded.version >= table.c.version
    stmt = stmt.on_conflict_do_update(
        index_elements=["unit", "metric", "period_from", "period_to"],
        set_={column: stmt.excluded[column] for column in ("settings", "version", "body", "computed_at")},
        where=newer,
    )
    session.execute(
        stmt,
        [
            {
                "unit": unit,
                "metric": metric,
                "period_from": period.start,
                "period_to": period.end,
                "settings": settings,
                "version": version,
                "body": orjson.dumps(figure),
                "computed_at": now,
            }
            for unit, settings, version, figure in sorted(figures, key=lambda item: item[0])
        ],
    )


__all__ = [
    "STORE_FORMAT",
    "day_version",
    "dependency_versions",
    "dependency_versions_of_sets",
    "last_utc_date",
    "load_stored",
    "load_stored_periods",
    "prune_stored",
    "save_stored",
    "settings_hash",
    "unit_dependency_versions",
]
