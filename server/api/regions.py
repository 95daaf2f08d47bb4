"""A region as a whole: its figure (the units' sums, by ownership, beside its target and the comparison
value) and the benchmarks an admin sets for it."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Path, Response, status
from sqlalchemy import select

from ..auth import Role
from ..figures.model import RegionFigure
from ..figures.region import region_figure
from ..registry import BenchmarkCreate, BenchmarkPublic, UnknownBenchmark, region_benchmarks, remove_benchmark, set_benchmark
from ..storage.registry_tables import UnitRow
from .deps import Admin, FigureReader, RowId, ServicesDep, SessionDep, confine_to_region
from .figure_query import FigureQueryDep

router = APIRouter(prefix="/regions/{region}", tags=["regions"])
RegionInPath = Annotated[str, Path(min_length=1, max_length=100, description="the region's name, as units are registered with it")]


@router.get("/compliance", responses={200: {"model": RegionFigure}})
def compliance_of_region(principal: FigureReader, region: RegionInPath, query: FigureQueryDep, session: SessionDep, services: ServicesDep) -> Response:
    """The whole region for a metric and period. Only those who see every unit of the region may ask."""
    confine_to_region(session, principal, region)
    if principal.role is Role.clinic_manager:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a clinic manager's token sees its own unit, not the whole region")
    units = list(session.scalars(select(UnitRow).where(UnitRow.region == region).order_by(UnitRow.unit)))
    if not units:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no unit is registered in region {region}")
    figure = region_figure(services.figures, session, region, units, query.metric, query.period, query.as_of)
    return Response(orjson.dumps(figure), media_type="application/json")


@router.get("/benchmarks")
def read_benchmarks(principal: FigureReader, region: RegionInPath, session: SessionDep) -> list[BenchmarkPublic]:
    confine_to_region(session, principal, region)
    return [BenchmarkPublic.model_validate(row) for row in region_benchmarks(session, region)]


@router.post("/benchmarks", status_code=status.HTTP_201_CREATED)
def add_benchmark(_: Admin, region: RegionInPath, spec: BenchmarkCreate, session: SessionDep) -> BenchmarkPublic:
    """Set a region target or comparison value from a date; one with the same metric, kind and start is replaced."""
    row, _replaced = set_benchmark(session, region, spec)
    session.commit()
    return BenchmarkPublic.model_validate(row)


@router.delete("/benchmarks/{benchmark_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_benchmark(_: Admin, region: RegionInPath, benchmark_id: RowId, session: SessionDep) -> Response:
    try:
        remove_benchmark(session, region, benchmark_id)
    except UnknownBenchmark as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
