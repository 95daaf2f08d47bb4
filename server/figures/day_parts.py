"""Telephone and assessment figures summed from the per-day parts kept in `figure_day_parts`.

A day's parts (server/metrics/day_parts.py) are computed from the rows anchored at it, as known now,
the first time a reader needs them, and kept for every process: valid while the day's version (set by
ingest whenever a row anchored at the day changes, server/ingest/day_marks.py) is the one read before
the rows, and while the unit's settings hash is the one they were computed with. A figure for any
period is then a sum over its days; only days whose parts are missing or stale, or that know of a
stamp after the figure's moment, are counted from their rows. The open cases of an assessment figure
are read at the figure's moment (one query for all units). A unit's live figure of today and its
running month on a page are as of the same moment, so the open cases counted for one are kept in the
process (`RecentParts`) under the unit's dependency version, read before them, for the other.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import and_, bindparam, func, or_, select, union_all, update
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from vardkoll.server.metrics import DEFINITION_VERSIONS, Period, UnitConfig
from vardkoll.server.metrics.assessment import LIMIT_DAYS, CaseLedger, CaseState
from vardkoll.server.metrics.day_parts import ASSESSMENT_COUNTS, FOREVER, TELEPHONE_COUNTS, DayPart, day_part, figure_from_parts

from ..ingest.entity_rows import CASE_STAMPS
from ..storage.one_of import one_of
from ..storage.stamp_keys import epoch_us, stamp_key, stamp_of
from ..storage.tables import CaseRow, FigureDayPart
from .kept_ledgers import KeptLedgers
from .recent_parts import RecentParts
from .loading import load_calls_of, load_cases_of


_LAST = "|\U0010ffff"
_CASE_STAMP_COLUMNS = tuple(getattr(CaseRow, name) for name in CASE_STAMPS)
Request = tuple[str, Period, datetime]  # unit, period, moment


@dataclass
class _Computed:
    """Parts computed now, to be kept: filed under the version read before the rows."""

    unit: str
    day: date
    version: int
    latest_us: int | None
    body: bytes


def _encode(metric: str, part: DayPart) -> bytes:
    names = TELEPHONE_COUNTS if metric == "telephone" else ASSESSMENT_COUNTS
    return orjson.dumps([[part.counts[name] for name in names], part.by_profession])


def _ledger(session: Session, metric: str, unit: str, days: set[date], config: UnitConfig) -> Any:
    return _ledgers(session, metric, {unit: set(days)}, {unit: config})[unit]


def _ledgers(session: Session, metric: str, days: dict[str, set[date]], configs: dict[str, UnitConfig], kept: KeptLedgers | None = None) -> dict[str, Any]:
    """Per unit, a ledger of the rows anchored at its days; units whose days span the same dates share
    a query (while traffic flows, every changed unit's stale day is today: one query for all). A unit
    with one such day has it from `kept` (see `kept_ledgers`), where given."""
    ledgers: dict[str, Any] = {}
    if kept is not None:
        single = {unit: next(iter(unit_days)) for unit, unit_days in days.items() if len(unit_days) == 1}
        ledgers.update(kept.ledgers(session, metric, single, configs))
        days = {unit: unit_days for unit, unit_days in days.items() if unit not in single}
    by_span: defaultdict[Period, list[str]] = defaultdict(list)
    for unit, unit_days in days.items():
        by_span[Period(min(unit_days), max(unit_days))].append(unit)
    for span, units in by_span.items():
        if metric == "telephone":
            ledgers.update(load_calls_of(session, units, span, configs))
        else:
            ledgers.update(load_cases_of(session, units, span, None, configs))  # only the rows anchored in the span
    return ledgers


# A day's parts as kept: the counts in the order of the metric's count names, by profession, the latest stamp.
_Kept = tuple[list[int], dict[str, int], int | None]


def _kept(metric: str, part: DayPart) -> _Kept:
    names = TELEPHONE_COUNTS if metric == "telephone" else ASSESSMENT_COUNTS
    return [part.counts[name] for name in names], part.by_profession, None if part.latest is None else epoch_us(part.latest)


def figures_from_parts(
    session: Session,
    metric: str,
    requests: list[Request],
    configs: dict[str, UnitConfig],
    hashes: dict[str, str],
    kept: KeptLedgers | None = None,
    recent: RecentParts | None = None,
    versions: dict[str, int] | None = None,
) -> tuple[list[dict[str, Any]], list[_Computed]]:
    """The figure of each request, equal to the rules' answer for that unit, period and moment, and the
    parts the database lacks, computed now or lately (for `keep_parts`). `hashes`: each unit's settings hash; `kept`: the
    process's kept days, to read a stale day's changed rows only; `recent`: the parts this process
    computed lately, to take a stale day's part from when it was computed for the same version, and
    with `versions` (the units' dependency versions, read before their rows) the open cases counted
    lately at the same version and moment."""
    units = sorted({unit for unit, _, _ in requests})
    first = min(period.start for _, period, _ in requests)
    last = max(period.end for _, period, _ in requests)
    table = FigureDayPart
    stored: dict[str, dict[date, _Kept]] = defaultdict(dict)
    stale: dict[str, dict[date, int]] = defaultdict(dict)  # unit -> day -> version read
    rows = session.execute(
        select(table.unit, table.day, table.version, table.parts_version, table.settings, table.latest_us, table.body).where(
            table.metric == metric, one_of(table.unit, units), table.day.between(first, last)
        )
    )
    for unit, day, version, parts_version, settings, latest_us, body in rows:
        if parts_version == version and settings == hashes[unit] and body is not None:
            counts, by_profession = orjson.loads(body)  # as `_encode` wrote them; summed as they are (a year is 365 parts a unit)
            stored[unit][day] = (counts, by_profession, latest_us)
        else:
            stale[unit][day] = version
    to_count: dict[str, dict[date, int]] = {}
    computed: list[_Computed] = []
    for unit, days in stale.items():
        for day, version in days.items():
            held = recent.get(metric, unit, day, version, hashes[unit]) if recent is not None else None
            if held is None:
                to_count.setdefault(unit, {})[day] = version
            else:
                stored[unit][day], body = held
                computed.append(_Computed(unit, day, version, held[0][2], body))  # the database still lacks it
    ledgers = _ledgers(session, metric, {unit: set(days) for unit, days in to_count.items()}, configs, kept)
    for unit, days in to_count.items():
        config, ledger = configs[unit], ledgers[unit]
        for day, version in days.items():
            part = day_part(metric, ledger, day, FOREVER, config)
            stored[unit][day] = kept = _kept(metric, part)
            computed.append(_Computed(unit, day, version, kept[2], _encode(metric, part)))
            if recent is not None:
                recent.put(metric, unit, day, version, hashes[unit], (kept, computed[-1].body))
    open_cases = _open_cases(session, [(unit, moment) for unit, _, moment in requests], configs, versions, recent) if metric == "assessment" else {}
    names = TELEPHONE_COUNTS if metric == "telephone" else ASSESSMENT_COUNTS
    figures = []
    for unit, period, moment in requests:
        config = configs[unit]
        moment_us = epoch_us(moment)
        totals = [0] * len(names)
        by_profession: dict[str, int] = {}
        unsettled = []
        # Days without a row have nothing anchored at them: they add nothing.
        for day, (counts, professions, latest_us) in stored[unit].items():
            if not period.start <= day <= period.end:
                continue
            if latest_us is not None and latest_us > moment_us:
                unsettled.append(day)  # knows of stamps after the moment (`DayPart.known_at`)
                continue
            totals = [a + b for a, b in zip(totals, counts)]
            for name, count in professions.items():
                by_profession[name] = by_profession.get(name, 0) + count
        if unsettled:
            # Days that know of stamps after the moment: counted again as known at the moment.
            ledger = ledgers.get(unit)
            if ledger is None or not set(unsettled) <= set(to_count.get(unit, ())):
                ledger = _ledger(session, metric, unit, set(unsettled) | set(to_count.get(unit, ())), config)
            for day in unsettled:
                counts, professions, _ = _kept(metric, day_part(metric, ledger, day, moment, config))
                totals = [a + b for a, b in zip(totals, counts)]
                for name, count in professions.items():
                    by_profession[name] = by_profession.get(name, 0) + count
        total = DayPart(dict(zip(names, totals)), by_profession)
        figure = figure_from_parts(metric, unit, period, total, config, open_cases.get((unit, moment), (0, 0)))
        figure["definition_version"] = DEFINITION_VERSIONS[metric]
        figures.append(figure)
    return figures, computed


def _open_cases(
    session: Session,
    wanted: list[tuple[str, datetime]],
    configs: dict[str, UnitConfig],
    versions: dict[str, int] | None = None,
    recent: RecentParts | None = None,
) -> dict[tuple[str, datetime], tuple[int, int]]:
    """(pending, overdue_open) per (unit, moment), by the rules (`CaseLedger._open_at`), counted by the
    database: one grouped query per moment and time zone, not a ledger of every open case. With
    `versions` and `recent`, those counted lately at the unit's version, moment and time zone are taken
    from there. Valid as the assessment figure that holds them is: every case event dated up to the
    moment's UTC date moves the version, and a later one cannot change what was open at the moment. The
    time zone (which local date is overdue) is a setting: changing it moves no version."""
    result: dict[tuple[str, datetime], tuple[int, int]] = {}
    groups: defaultdict[tuple[datetime, str], set[str]] = defaultdict(set)
    recent, versions = (recent, versions) if versions is not None else (None, {})
    for unit, moment in wanted:
        held = recent.get("open cases", unit, moment.date(), versions[unit], _counted_at(moment, configs[unit])) if recent is not None else None
        if held is None:
            groups[(moment, configs[unit].time_zone)].add(unit)
        else:
            result[(unit, moment)] = held
    for (moment, _), units in groups.items():
        tz = configs[next(iter(units))].tz
        counts = open_case_counts(session, sorted(units), moment, tz)
        for unit in units:
            result[(unit, moment)] = counts.get(unit, (0, 0))
            if recent is not None:
                recent.put("open cases", unit, moment.date(), versions[unit], _counted_at(moment, configs[unit]), result[(unit, moment)])
    return result


def _counted_at(moment: datetime, config: UnitConfig) -> str:
    """What open cases kept in `RecentParts` were counted for, beside the version."""
    return f"at {epoch_us(moment)} in {config.time_zone}"


def open_case_counts(session: Session, units: list[str], moment: datetime, tz: ZoneInfo) -> dict[str, tuple[int, int]]:
    """Per unit (in time zone `tz`), the in-scope cases open at `moment` as (pending, overdue_open).

    The rows are exactly `open_case_ledgers`' (whose every case the rules count as open). A case is
    overdue when `moment` is past the end of its contact day + 3 (`OpenCase.overdue_at`), that is
    when the moment's local date is at least the contact day + 4: when its contact came before the
    local midnight that begins the moment's date - 3. A stamp key before that instant sorts before the
    instant's 17 digits alone."""
    key = stamp_key(moment, _LAST)
    first_on_time = datetime.combine(moment.astimezone(tz).date() - timedelta(days=LIMIT_DAYS), time(0), tzinfo=tz)
    overdue_before = f"{epoch_us(first_on_time):017d}"
    counts: dict[str, tuple[int, int]] = {}
    # Both conditions in one statement (one round trip), each still its own grouped part.
    parts = [
        select(CaseRow.unit, func.count(), func.sum(sql_case((CaseRow.contact < overdue_before, 1), else_=0)))
        .where(one_of(CaseRow.unit, units), not_assessed_by_then, *_open_at(key))
        .group_by(CaseRow.unit)
        for not_assessed_by_then in _not_assessed_at(key)
    ]
    for unit, count, overdue in session.execute(union_all(*parts)):
        pending, overdue_open = counts.get(unit, (0, 0))
        counts[unit] = (pending + int(count) - int(overdue or 0), overdue_open + int(overdue or 0))
    return counts


def _not_assessed_at(key: str) -> tuple[Any, Any]:
    """Never assessed, or assessed after the stamp key `key`: two disjoint conditions, each asked on
    its own so that the database reads the (unit, assessed) index for it instead of every case of
    the unit (SQLite does not split the OR; 1.4 M cases took a second)."""
    return CaseRow.assessed.is_(None), CaseRow.assessed > key


def _open_at(key: str) -> tuple[Any, ...]:
    """With one of `_not_assessed_at`, the conditions that leave out only cases the rules do not count
    as open at the stamp key `key`: contact after it, unlisted, excluded or cancelled by then."""
    return (
        CaseRow.contact <= key,
        or_(CaseRow.listed.is_(None), CaseRow.listed.is_(True)),
        or_(CaseRow.excluded.is_(None), CaseRow.excluded > key),
        or_(CaseRow.cancelled.is_(None), CaseRow.cancelled > key),
    )


def open_case_ledgers(session: Session, units: list[str], moment: datetime, configs: dict[str, UnitConfig]) -> dict[str, CaseLedger]:
    """Per unit, a ledger of the cases that can be open at `moment`: its `open_cases(moment)` is the
    full ledger's. The query leaves out only rows the rules pass over anyway: contact after the
    moment, assessed by then, unlisted, excluded or cancelled by then."""
    key = stamp_key(moment, _LAST)
    columns = (CaseRow.unit, CaseRow.case, CaseRow.listed, CaseRow.profession, *_CASE_STAMP_COLUMNS)
    rows = [
        row for condition in _not_assessed_at(key) for row in session.execute(select(*columns).where(one_of(CaseRow.unit, units), condition, *_open_at(key)))
    ]
    ledgers: dict[str, CaseLedger] = {unit: CaseLedger() for unit in units}
    for unit, case, listed, profession, *keys in rows:
        state = CaseState(**{name: stamp_of(key, configs[unit].tz) for name, key in zip(CASE_STAMPS, keys)})
        if listed is not None:
            state.listed = listed
        state.profession = profession or ""
        ledgers[unit].restore(case, state)
    return ledgers


def keep_parts(session: Session, metric: str, computed: list[_Computed], hashes: dict[str, str]) -> None:
    """File computed parts under the version read before their rows; a day whose version has moved on
    since is left alone (its parts are stale already). Written by `computed_writes.write_computed`."""
    if not computed:
        return
    params = [
        {"b_unit": c.unit, "b_day": c.day, "b_version": c.version, "b_settings": hashes[c.unit], "b_latest": c.latest_us, "b_body": c.body}
        for c in sorted(computed, key=lambda c: (c.unit, c.day))
    ]
    session.connection().execute(_keep_statement(metric), params)


@lru_cache(maxsize=None)
def _keep_statement(metric: str) -> Any:
    """The UPDATE that files one day's parts, built once per metric (all values are bound parameters)."""
    table = FigureDayPart.__table__
    return (
        update(table)
        .where(
            and_(table.c.unit == bindparam("b_unit"), table.c.metric == metric, table.c.day == bindparam("b_day"), table.c.version == bindparam("b_version"))
        )
        .values(parts_version=bindparam("b_version"), settings=bindparam("b_settings"), latest_us=bindparam("b_latest"), body=bindparam("b_body"))
    )
