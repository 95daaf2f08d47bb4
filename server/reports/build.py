"""Make a region's report for a month from the stored data, with the metric rules' own code.

Telephone and fixed doctor are the API's figures (`FigureService.figures`, the same call the API
answers with). The assessment lines sort the cases that the assessment figure counts: the case rows
loaded as the figure's reference path loads them (`load_cases`), walked by `CaseLedger.completed`,
the generator the figure itself sums. The form of each case's first assessment is read from that
assessment's archived event (the case row keeps its event id in the stamp).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from vardkoll.server.metrics import DEFINITION_VERSIONS, Period, end_of_day
from vardkoll.server.metrics.calendar import zone
from vardkoll.server.metrics.config import DEFAULT_TIME_ZONE

from ..figures.cache import settings_stamp
from ..figures.loading import load_cases
from ..figures.store import dependency_versions
from ..services import Services
from ..storage.registry_tables import UnitRow
from ..storage.tables import StoredEvent
from .shape import SECTIONS, Line, unit_lines

_CHUNK = 500  # event ids per query


def month_period(month: date) -> Period:
    first = month.replace(day=1)
    return Period(first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1))


def region_units(session: Session, region: str) -> list[UnitRow]:
    return list(session.scalars(select(UnitRow).where(UnitRow.region == region).order_by(UnitRow.unit)))


def inputs_digest(services: Services, session: Session, units: list[UnitRow], period: Period) -> str | None:
    """What the report is made from, cheaply: each unit's registry fields, settings and data version up
    to the month's end (server/figures/store.py). Equal digests: the report would come out the same.
    None when no unit has any event up to the month's end (the job makes no report then)."""
    ids = [row.unit for row in units]
    through = period.end + timedelta(days=1)  # the month's end in any time zone falls on a UTC date up to this
    versions = dependency_versions(session, ids, through, None) if ids else {}
    if not any(versions.values()):
        return None
    parts = [
        (row.unit, row.name, row.ownership, row.municipality_code, versions[row.unit], settings_stamp(services.units.config(row.unit, period.end)))
        for row in units
    ]
    return hashlib.sha256(repr((sorted(DEFINITION_VERSIONS.items()), parts)).encode()).hexdigest()


def _forms(session: Session, unit: str, event_ids: list[str]) -> dict[str, str]:
    """event id → `form`, for the archived assessment events among `event_ids`."""
    forms: dict[str, str] = {}
    for start in range(0, len(event_ids), _CHUNK):
        chunk = event_ids[start : start + _CHUNK]
        rows = session.execute(select(StoredEvent.event_id, StoredEvent.body).where(StoredEvent.unit == unit, StoredEvent.event_id.in_(chunk)))
        for event_id, body in rows:
            forms[event_id] = orjson.loads(body).get("form")
    return forms


def _unit_report(services: Services, session: Session, row: UnitRow, period: Period, figures: dict[str, dict[str, Any]]) -> list[Line]:
    config = services.units.config(row.unit, period.end)
    as_of = end_of_day(period.end, config.tz)
    ledger = load_cases(session, row.unit, period, as_of, config)
    cases = list(ledger.completed(period, as_of))
    forms = _forms(session, row.unit, sorted({done.state.assessed.event_id for done in cases}))  # type: ignore[union-attr]  # a completed case has an assessed stamp
    form_of = {done.case: forms[done.state.assessed.event_id] for done in cases if done.state.assessed.event_id in forms}  # type: ignore[union-attr]  # as above
    unit = {"unit": row.unit, "name": row.name, "ownership": row.ownership, "municipality_code": row.municipality_code, "as_known_at": as_of.isoformat()}
    return unit_lines(unit, figures["telephone"], figures["assessment"], cases, form_of, figures["fixed_doctor"])


def make_report(services: Services, region: str, month: date) -> dict[str, Any]:
    """The internal report (every cell) of `region` for the month holding `month`, as known at the
    month's last instant: the moment the API's figures for the month default to."""
    period = month_period(month)
    with services.sessions() as session:
        units = region_units(session, region)
        inputs = inputs_digest(services, session, units, period)
        ids = [row.unit for row in units]
        figures = {metric: services.figures.figures(ids, metric, period, keep_in_memory=False) if ids else [] for metric in SECTIONS}
        lines: list[Line] = []
        for i, row in enumerate(units):
            lines += _unit_report(services, session, row, period, {metric: figures[metric][i] for metric in SECTIONS})
    return {
        "region": region,
        "month": period.start.strftime("%Y-%m"),
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "as_known_at": end_of_day(period.end, zone(DEFAULT_TIME_ZONE)).isoformat(),
        "definition_versions": {metric: DEFINITION_VERSIONS[metric] for metric in SECTIONS},
        "lines": lines,
        "inputs": inputs or "",
    }


def content_digest(report: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(report["lines"], option=orjson.OPT_SORT_KEYS)).hexdigest()
