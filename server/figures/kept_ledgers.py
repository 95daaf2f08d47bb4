"""Units' ledgers of a day, kept in the process and brought up to date from the rows changed since.

A live update or a Regionvy after new events needs the changed units' parts of today, and today's
parts need today's rows. Read whole, a busy clinic's day of calls cost a third of each live update
(SPEC 6: live p99 < 100 ms with 500 streams) and grew through the day. Kept here, a day is read whole
once; later only its changed rows are read.

Ingest gives every call and case row it merges the version the commit gave the unit
(`CallRow.version`), and counts such commits in `unit_activity.row_versions` beside `version`. A kept
day remembers both counters as they were before its rows were read. To bring it up to date, one
statement (one snapshot on every database) reads
- the unit's `version` and `row_versions` now,
- the rows anchored at the day with a `version` newer than the kept one,
- how many rows are anchored at the day.
The kept day is used when both counters moved by the same amount (every commit since set its rows'
versions: a process of the previous release, during a rolling upgrade, does not) and, with the
changed rows put in, it holds exactly as many rows as the day has (a row that left the day, as an
earlier offer moves a call to yesterday, is not among them; it is the only way to lose one, as rows
are never deleted, but the count would catch that too). Otherwise the day is read whole.

Memory: a kept row is about 600 bytes (tracemalloc over the live benchmark's 47 000 rows of a day), and
a region of 230 units has about 90 000 rows a busy day; at most `MAX_ROWS` rows (about 60 MB) are kept
per process, the days least recently used going first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from datetime import date
from typing import Any, Callable

import orjson
from sqlalchemy import BigInteger, Boolean, String, and_, bindparam, cast, func, literal_column, null, or_, select, union_all
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from vardkoll.server.metrics import UnitConfig
from vardkoll.server.metrics.assessment import CaseLedger
from vardkoll.server.metrics.telephone import CallLedger

from ..storage.one_of import one_of
from ..storage.tables import CallRow, CaseRow, UnitActivity
from .loading import CALL_DAY_COLUMNS, CALL_ROW_COLUMNS, CASE_DAY_COLUMNS, CASE_ROW_COLUMNS, call_state, case_state

MAX_ROWS = 100_000
_CHANGED, _COUNT, _COUNTERS = 0, 1, 2  # the parts of the statement, in its first column
_NO_NUMBER = cast(null(), BigInteger)  # PostgreSQL types a column of bare NULLs as text


@dataclass(frozen=True)
class _Metric:
    name: str
    table: Any
    columns: tuple[Any, ...]  # unit, id, then what `state` takes
    day_columns: tuple[Any, ...]  # a row belongs to the days in these
    state: Callable[..., Any]
    ledger: Callable[[], Any]


_METRICS = {
    "telephone": _Metric("telephone", CallRow, CALL_ROW_COLUMNS, CALL_DAY_COLUMNS, call_state, CallLedger),
    "assessment": _Metric("assessment", CaseRow, CASE_ROW_COLUMNS, CASE_DAY_COLUMNS, case_state, CaseLedger),
}


@dataclass(frozen=True)
class _Day:
    """One unit's rows anchored at one day, as states, read when the unit was at these counters."""

    time_zone: str
    version: int
    row_versions: int
    states: dict[str, Any]  # never changed once kept: an update makes a new one


class KeptLedgers:
    """Per (metric, unit, day), the day's rows as states; thread-safe. One per FigureService (one database)."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self._max_rows = max_rows
        self._days: OrderedDict[tuple[str, str, date], _Day] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()
        self.reads = {"whole": 0, "changed": 0}  # how each day was read: for tests and benchmarks

    def ledgers(self, session: Session, metric: str, days: dict[str, date], configs: dict[str, UnitConfig]) -> dict[str, Any]:
        """Per unit, a ledger holding exactly the rows anchored at its day in `days`, as stored now."""
        spec = _METRICS[metric]
        kept = {unit: self._get((metric, unit, day), configs[unit].time_zone) for unit, day in days.items()}
        states: dict[str, dict[str, Any]] = {}
        by_day: dict[date, list[str]] = {}
        for unit, day in days.items():
            by_day.setdefault(day, []).append(unit)
        for day, units in by_day.items():
            known = {unit: kept[unit] for unit in units if kept[unit] is not None}
            updated = _changed_since(session, spec, day, known, configs) if known else {}
            for unit, fresh in updated.items():
                states[unit] = fresh.states
                self._put((metric, unit, day), fresh)
            whole = sorted(unit for unit in units if unit not in updated)
            if whole:
                for unit, fresh in _read_whole(session, spec, day, whole, configs).items():
                    states[unit] = fresh.states
                    self._put((metric, unit, day), fresh)
            with self._lock:
                self.reads["changed"] += len(updated)
                self.reads["whole"] += len(whole)
        ledgers = {}
        for unit, unit_states in states.items():
            ledger = ledgers[unit] = spec.ledger()
            for key, state in unit_states.items():
                ledger.restore(key, state)
        return ledgers

    def _get(self, key: tuple[str, str, date], time_zone: str) -> _Day | None:
        with self._lock:
            found = self._days.get(key)
            if found is None or found.time_zone != time_zone:
                return None
            self._days.move_to_end(key)
            return found

    def _put(self, key: tuple[str, str, date], day: _Day) -> None:
        with self._lock:
            old = self._days.pop(key, None)
            if old is not None:
                self._rows -= len(old.states)
            self._days[key] = day
            self._rows += len(day.states)
            while self._rows > self._max_rows and len(self._days) > 1:
                _, evicted = self._days.popitem(last=False)
                self._rows -= len(evicted.states)


def _read_whole(session: Session, spec: _Metric, day: date, units: list[str], configs: dict[str, UnitConfig]) -> dict[str, _Day]:
    """The units' rows of the day, filed under the counters read before them: a commit in between is
    read again later (its rows' versions are newer), or makes the counters disagree."""
    counters = {unit: (version, row_versions) for unit, version, row_versions in session.execute(_counters_statement(), {"units": units})}
    states: dict[str, dict[str, Any]] = {unit: {} for unit in units}
    for unit, key, *values in session.execute(_whole_statement(spec.name), {"units": units, "day": day}):
        states[unit][key] = spec.state(values, configs[unit].tz)
    # A unit without a row in unit_activity has had no commit: nothing is anchored anywhere yet.
    return {unit: _Day(configs[unit].time_zone, *counters.get(unit, (0, 0)), states[unit]) for unit in units}


def _changed_since(session: Session, spec: _Metric, day: date, known: dict[str, _Day], configs: dict[str, UnitConfig]) -> dict[str, _Day]:
    """The kept days that can be brought up to date from their changed rows, brought up to date."""
    units = sorted(known)
    rows: dict[str, list[tuple[str, list[Any]]]] = {unit: [] for unit in units}
    count: dict[str, int] = {}
    now: dict[str, tuple[int, int]] = {}
    since = min(kept.version for kept in known.values())
    kept_versions = orjson.dumps({unit: kept.version for unit, kept in known.items()}).decode()
    parameters = {"units": units, "day": day, "since": since, "kept": kept_versions}
    for part, unit, key, *rest in session.execute(_changed_statement(spec.name), parameters):
        *row_values, first, second = rest
        if part == _CHANGED:
            if first > known[unit].version:  # newer than the unit's own kept version, not only than `since` (`_NewerThanKept`)
                rows[unit].append((key, row_values))
        elif part == _COUNT:
            count[unit] = first
        else:
            now[unit] = (first, second)
    result = {}
    for unit in units:
        kept = known[unit]
        version, row_versions = now.get(unit, (0, 0))
        if version < kept.version or version - kept.version != row_versions - kept.row_versions:
            continue  # a commit that did not set its rows' versions: read the day whole
        states = dict(kept.states)
        tz = configs[unit].tz
        for key, row_values in rows[unit]:
            states[key] = spec.state(row_values, tz)
        if len(states) != count.get(unit, 0):
            continue  # a row left the day: read it whole
        result[unit] = _Day(kept.time_zone, version, row_versions, states)
    return result


# The statements are built once (their values are bound parameters): building and compiling one per
# update cost more than running it.


def _anchored_at_day(spec: _Metric) -> Any:
    return and_(one_of(spec.table.unit, "units"), or_(*(column == bindparam("day") for column in spec.day_columns)))


@lru_cache(maxsize=None)
def _counters_statement() -> Any:
    return select(UnitActivity.unit, UnitActivity.version, UnitActivity.row_versions).where(one_of(UnitActivity.unit, "units"))


@lru_cache(maxsize=None)
def _whole_statement(metric: str) -> Any:
    spec = _METRICS[metric]
    return select(*spec.columns).where(_anchored_at_day(spec))


@lru_cache(maxsize=None)
def _changed_statement(metric: str) -> Any:
    """In one snapshot: the day's rows newer than `since`, the day's number of rows, the units' counters.
    Each part fills the same columns: its tag, the unit, then the row's or blanks, then two numbers."""
    spec = _METRICS[metric]
    table = spec.table
    anchored = _anchored_at_day(spec)
    blanks = [null()] * (len(spec.columns) - 2)  # typed by the first part's columns
    changed = select(literal_column(str(_CHANGED)), *spec.columns, table.version, _NO_NUMBER).where(anchored, _newer_than_kept(table))
    counts = select(literal_column(str(_COUNT)), table.unit, null(), *blanks, func.count(), _NO_NUMBER).where(anchored).group_by(table.unit)
    counters = select(literal_column(str(_COUNTERS)), UnitActivity.unit, null(), *blanks, UnitActivity.version, UnitActivity.row_versions).where(
        one_of(UnitActivity.unit, "units")
    )
    return union_all(changed, counts, counters)


class _NewerThanKept(ColumnElement[bool]):
    """A row whose version is newer than its unit's kept day's: on PostgreSQL each unit's own (`own`,
    from a JSON object of unit -> kept version bound as `kept`), elsewhere the least of them (`least`,
    bound as `since`), `_changed_since` passing over the rows of units whose own is higher.

    The versions count each unit's own commits, so units' kept versions lie far apart. Newer than the
    least alone, a Regionvy under a country's traffic had back every row of the day of each changed
    unit whose count was ahead: 9-27 ms for the statement instead of 1 (docs/benchmarks.md, "Changed
    rows by each unit's own version"). Only the bound that is rendered is sent."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals = [("least", InternalTraversal.dp_clauseelement), ("own", InternalTraversal.dp_clauseelement)]

    def __init__(self, least: ColumnElement[bool], own: ColumnElement[bool]) -> None:
        self.least = least
        self.own = own


@compiles(_NewerThanKept)
def _newer_than_least(element: _NewerThanKept, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.least, **kw))


@compiles(_NewerThanKept, "postgresql")
def _newer_than_own(element: _NewerThanKept, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.own, **kw))


def _newer_than_kept(table: Any) -> _NewerThanKept:
    # The object parsed once per statement (a scalar subquery without FROM), looked up per row.
    kept = select(cast(bindparam("kept", type_=String), JSONB)).scalar_subquery()
    own = cast(kept.op("->>")(table.unit), BigInteger)
    return _NewerThanKept(table.version > bindparam("since"), table.version > own)
