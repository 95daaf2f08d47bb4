"""Figures (SPEC 4): one unit's figure, or one figure per unit of a region; JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from ..auth import Role, visible_units
from ..figures.model import Figure
from ..storage.registry_tables import UnitRow
from .deps import FigureReader, ServicesDep, SessionDep, UnitInPath, confine_to_region, confine_to_unit
from .figure_csv import csv_response
from .figure_query import FigureQueryDep

router = APIRouter(tags=["compliance"])

FIGURE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Figure,
        "description": "The SPEC 2.5 figure with `definition_version` and `data` (freshness); CSV with format=csv",
        "content": {"text/csv": {}},
    }
}
FIGURES_DOC: dict[int | str, dict[str, Any]] = {
    200: {"model": list[Figure], "description": "One figure per unit, sorted by unit; CSV with format=csv", "content": {"text/csv": {}}}
}


def _json(document: Any) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


@router.get("/units/{unit}/compliance", responses=FIGURE_DOC)
def unit_compliance(principal: FigureReader, unit: UnitInPath, query: FigureQueryDep, session: SessionDep, services: ServicesDep) -> Response:
    """One unit's figure for a metric and period, as known at `as_of` (default: the end of the period)."""
    confine_to_unit(session, principal, unit)
    figure = services.figures.figure(unit, query.metric, query.period, query.as_of)
    return csv_response([figure], query, unit) if query.csv else _json(figure)


@router.get("/compliance", responses=FIGURES_DOC)
def compliance(
    principal: FigureReader,
    query: FigureQueryDep,
    session: SessionDep,
    services: ServicesDep,
    region: Annotated[str | None, Query(description="the region's units (default: all units you may see)")] = None,
) -> Response:
    """One figure per registered unit: of `region`, or of every unit the token may see."""
    registry = session.execute(select(UnitRow.unit, UnitRow.region)).all()
    if region is not None:
        confine_to_region(session, principal, region)
        registry = [(u, r) for u, r in registry if r == region]
    units = visible_units(principal, registry)
    figures = services.figures.figures(units, query.metric, query.period, query.as_of) if units else []
    label = region or (principal.region if principal.role is Role.region_analyst else principal.unit) or "all"
    return csv_response(figures, query, label) if query.csv else _json(figures)
