"""Continuity figures from SQL aggregates over `doctor_visits`, for many units at once.

Continuity is not a sum of per-day parts: a patient's index (Bice-Boxerman) is not linear in the
visits, and the mean runs over the patients eligible in the whole 18-month window. But it only needs,
per patient, the number of visits n and the sum of squared visits per practitioner s; and per unit
only how many eligible patients share each (n, s). The database counts those, so a unit's 18 months of
visits come back as a few dozen rows. The figure is then the rules' own arithmetic
(`server.metrics.continuity`), exact: the index sum is added up as fractions.

Most patients have one or two visits in the window and never count (3 visits make a patient
eligible), so the visits are read twice, both times from `ix_doctor_visits_unit_patient` (unit,
patient, practitioner, day, at_us) alone: first the patients with at least 3 visits in the window,
counted in the index's order without sorting, then only those patients' visits per practitioner.
On the 230-unit bench region (566 000 visits, 38 600 eligible patients) that is 0.4 s of SQLite
instead of 1 s of grouping every visit three times (docs/benchmarks.md).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Date, case, func, literal_column, select
from sqlalchemy.orm import Session

from vardkoll.server.metrics import DEFINITION_VERSIONS, Period, UnitConfig
from vardkoll.server.metrics.continuity import COC_MIN_VISITS, bice_boxerman_of_sums, coc_window, continuity_figure

from ..storage.stamp_keys import epoch_us
from ..storage.tables import DoctorVisitRow as V

Request = tuple[str, Period, datetime]  # unit, period, moment


def continuity_figures(session: Session, requests: list[Request], configs: dict[str, UnitConfig]) -> list[dict[str, Any]]:
    """The continuity figure of each (unit, period, moment); requests sharing a period and moment
    are answered by two queries together."""
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
        window = coc_window(period.end)
        day = _day_by_patient(session)
        in_window = (V.unit.in_(units), day.between(window.start, window.end), V.at_us <= last_us)
        frequent = select(V.unit, V.patient).where(*in_window).group_by(V.unit, V.patient).having(func.count() >= COC_MIN_VISITS).subquery()
        pairs = (
            select(V.unit, V.patient, func.count().label("c"))
            .join(frequent, (V.unit == frequent.c.unit) & (V.patient == frequent.c.patient))
            .where(V.day.between(window.start, window.end), V.at_us <= last_us)
            .group_by(V.unit, V.patient, V.practitioner)
            .subquery()
        )
        patients = (
            select(pairs.c.unit, func.sum(pairs.c.c).label("n"), func.sum(pairs.c.c * pairs.c.c).label("s")).group_by(pairs.c.unit, pairs.c.patient).subquery()
        )
        sums: defaultdict[str, Fraction] = defaultdict(Fraction)
        eligible: defaultdict[str, int] = defaultdict(int)
        for unit, n, s, many in session.execute(
            select(patients.c.unit, patients.c.n, patients.c.s, func.count()).group_by(patients.c.unit, patients.c.n, patients.c.s)
        ):
            sums[unit] += many * bice_boxerman_of_sums(int(n), int(s))
            eligible[unit] += many
        for unit in units:
            own, with_fixed = counts.get(unit, (0, 0))
            figure = continuity_figure(unit, period, own, with_fixed, sums[unit], eligible[unit], configs[unit])
            figure["definition_version"] = DEFINITION_VERSIONS["continuity"]
            answers[(unit, period, moment)] = figure
    return [answers[request] for request in requests]


def _day_by_patient(session: Session) -> Any:
    """`day` as the eligible patients' query compares it. SQLite's planner prefers `(unit, day)` for a
    range on `day`, then sorts every visit of the window to group them by patient (2.5 times slower
    on the bench region); a unary plus leaves `day` unindexed there, so the by-patient index, which
    holds `day` too, is read in order. PostgreSQL chooses by cost (and has no unary plus for dates)."""
    if session.get_bind().dialect.name == "sqlite":
        return literal_column(f"+{V.__tablename__}.day", Date)
    return V.day
