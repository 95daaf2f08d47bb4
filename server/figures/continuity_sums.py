"""Continuity figures from SQL aggregates over `doctor_visits`, for many units at once.

Continuity is not a sum of per-day parts: a patient's index (Bice-Boxerman) is not linear in the
visits, and the mean runs over the patients eligible in the whole 18-month window. But it only needs,
per patient, the number of visits n and the sum of squared visits per practitioner s; and per unit
only how many eligible patients share each (n, s). The database counts those, so a unit's 18 months of
visits come back as a few dozen rows. The figure is then the rules' own arithmetic
(`server.metrics.continuity`), exact: the index sum is added up as fractions.

Both backends read the 18 months from `ix_doctor_visits_unit_patient` (unit, patient, practitioner,
day, at_us) alone, in its order, and group as they read instead of sorting or hashing every visit
(`_patient_sums`; on the 230-unit bench region, 566 000 visits: 1.0-1.1 s -> 0.4-0.5 s on both
backends, docs/benchmarks.md).

A unit's sums are the same for every figure whose period ends on the same day, as of the same moment:
its live figure of today and the running month up to today. While traffic flows, the live stream counts
them for each changed unit and the next Regionvy asked for the same again (16 changed units: 37 of a
page's 71 ms on an idle PostgreSQL). So the sums counted are kept in the process (`RecentParts`), under
the unit's dependency version (read before the visits, as every kept figure is: a visit in the window
moves it) and the moment, and a reader of the same version takes them from there.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Date, case, func, literal_column, select, text
from sqlalchemy.orm import Session

from vardkoll.server.metrics import DEFINITION_VERSIONS, Period, UnitConfig
from vardkoll.server.metrics.continuity import COC_MIN_VISITS, bice_boxerman_of_sums, coc_window, continuity_figure

from ..storage.stamp_keys import epoch_us
from ..storage.tables import DoctorVisitRow as V
from .recent_parts import RecentParts

Request = tuple[str, Period, datetime]  # unit, period, moment


def continuity_figures(
    session: Session,
    requests: list[Request],
    configs: dict[str, UnitConfig],
    versions: dict[str, int] | None = None,
    recent: RecentParts | None = None,
) -> list[dict[str, Any]]:
    """The continuity figure of each (unit, period, moment); requests sharing a period and moment
    are answered by two queries together. `versions`: the units' dependency versions, read before any
    visit; with `recent`, the 18-month sums counted lately at the same version and moment are taken
    from there (the second query only asks for the others)."""
    groups: defaultdict[tuple[Period, datetime], list[str]] = defaultdict(list)
    for unit, period, moment in requests:
        groups[(period, moment)].append(unit)
    answers: dict[tuple[str, Period, datetime], dict[str, Any]] = {}
    for (period, moment), units in groups.items():
        last_us = epoch_us(moment)
        fixed = session.execute(
            select(V.unit, func.count(), func.sum(case((V.practitioner == V.fixed_doctor, 1), else_=0)))
            .where(V.unit.in_(units), V.day.between(period.start, period.end), V.at_us <= last_us, V.fixed_doctor.is_not(None))
            .group_by(V.unit)
        )
        counts = {unit: (int(own or 0), int(with_fixed)) for unit, with_fixed, own in fixed}
        sums = _window_sums(session, units, coc_window(period.end), last_us, versions, recent)
        for unit in units:
            own, with_fixed = counts.get(unit, (0, 0))
            figure = continuity_figure(unit, period, own, with_fixed, *sums[unit], configs[unit])
            figure["definition_version"] = DEFINITION_VERSIONS["continuity"]
            answers[(unit, period, moment)] = figure
    return [answers[request] for request in requests]


def _window_sums(
    session: Session, units: list[str], window: Period, last_us: int, versions: dict[str, int] | None, recent: RecentParts | None
) -> dict[str, tuple[Fraction, int]]:
    """Per unit, the index summed over its eligible patients in `window` (visits at or before
    `last_us`) and how many they are: kept ones at the unit's version in `versions`, the rest counted."""
    moment = f"at {last_us}"
    found: dict[str, tuple[Fraction, int]] = {}
    if versions is not None and recent is not None:
        for unit in units:
            held = recent.get("continuity", unit, window.end, versions[unit], moment)
            if held is not None:
                found[unit] = held
    missing = [unit for unit in units if unit not in found]
    if not missing:
        return found
    patients = _patient_sums(session, missing, window, last_us)
    sums: defaultdict[str, Fraction] = defaultdict(Fraction)
    eligible: defaultdict[str, int] = defaultdict(int)
    for unit, n, s, many in _read_in_index_order(
        session, select(patients.c.unit, patients.c.n, patients.c.s, func.count()).group_by(patients.c.unit, patients.c.n, patients.c.s)
    ):
        sums[unit] += many * bice_boxerman_of_sums(int(n), int(s))
        eligible[unit] += many
    for unit in missing:
        found[unit] = (sums[unit], eligible[unit])
        if versions is not None and recent is not None:
            recent.put("continuity", unit, window.end, versions[unit], moment, found[unit])
    return found


def _patient_sums(session: Session, units: list[str], window: Period, last_us: int) -> Any:
    """Per unit and eligible patient (3 visits or more in the window, at or before `last_us`): n, the
    visits, and s, the sum of squared visits per practitioner. Both shapes read only
    `ix_doctor_visits_unit_patient`; each is the faster one on its backend (docs/benchmarks.md)."""
    in_window = (V.day.between(window.start, window.end), V.at_us <= last_us)
    if session.get_bind().dialect.name != "sqlite":
        # PostgreSQL streams the index in (unit, patient, practitioner) order through both groupings.
        pairs = select(V.unit, V.patient, func.count().label("c")).where(V.unit.in_(units), *in_window).group_by(V.unit, V.patient, V.practitioner).subquery()
        return (
            select(pairs.c.unit, func.sum(pairs.c.c).label("n"), func.sum(pairs.c.c * pairs.c.c).label("s"))
            .group_by(pairs.c.unit, pairs.c.patient)
            .having(func.sum(pairs.c.c) >= COC_MIN_VISITS)
            .subquery()
        )
    # SQLite sorts the output of a grouped subquery again before grouping it by patient, so it first
    # finds the patients with 3 visits (in the index's order, no sort) and groups only their visits.
    # The unary plus leaves `day` unindexed there: for a range on `day` SQLite's planner would choose
    # `(unit, day)` and sort every visit of the window.
    day = literal_column(f"+{V.__tablename__}.day", Date)
    frequent = (
        select(V.unit, V.patient)
        .where(V.unit.in_(units), day.between(window.start, window.end), V.at_us <= last_us)
        .group_by(V.unit, V.patient)
        .having(func.count() >= COC_MIN_VISITS)
        .subquery()
    )
    pairs = (
        select(V.unit, V.patient, func.count().label("c"))
        .join(frequent, (V.unit == frequent.c.unit) & (V.patient == frequent.c.patient))
        .where(*in_window)
        .group_by(V.unit, V.patient, V.practitioner)
        .subquery()
    )
    return select(pairs.c.unit, func.sum(pairs.c.c).label("n"), func.sum(pairs.c.c * pairs.c.c).label("s")).group_by(pairs.c.unit, pairs.c.patient).subquery()


def _read_in_index_order(session: Session, statement: Any) -> list[Any]:
    """The rows of `statement`; on PostgreSQL with hash aggregation off for it alone. Its planner
    hashes the 18 months of visits (spilling to disk at the default `work_mem`, and once per parallel
    worker) where reading the by-patient index in order and grouping as it streams is 3-4 times faster.
    Set for the connection and reset after, not `SET LOCAL`: the figure service reads without a
    transaction (`storage.database.read_sessions`), where `SET LOCAL` does nothing (a cold Regionvy of
    230 units took 1.6-2.0 s instead of 0.8 s until this said so)."""
    if session.get_bind().dialect.name == "sqlite":
        return list(session.execute(statement))
    session.execute(text("SET enable_hashagg = off"))
    try:
        return list(session.execute(statement))
    finally:
        session.execute(text("RESET enable_hashagg"))  # back to the server's setting before the connection goes back to the pool
