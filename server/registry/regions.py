"""A region's benchmarks: its own targets per metric and the values it compares with (the national figure)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.registry_tables import RegionBenchmark
from .schemas import BenchmarkCreate


class UnknownBenchmark(LookupError):
    def __init__(self, region: str, benchmark_id: int) -> None:
        super().__init__(f"region {region} has no benchmark with id {benchmark_id}")


def set_benchmark(session: Session, region: str, spec: BenchmarkCreate) -> tuple[RegionBenchmark, bool]:
    """Add one, or replace the one with the same metric, kind and start: (row, whether it replaced one)."""
    row = session.scalars(
        select(RegionBenchmark).where(
            RegionBenchmark.region == region,
            RegionBenchmark.metric == spec.metric,
            RegionBenchmark.kind == spec.kind,
            RegionBenchmark.valid_from == spec.valid_from,
        )
    ).first()
    replaced = row is not None
    if row is None:
        row = RegionBenchmark(region=region, **spec.model_dump())
        session.add(row)
    else:
        row.label, row.value, row.valid_to = spec.label, spec.value, spec.valid_to
    session.flush()
    return row, replaced


def region_benchmarks(session: Session, region: str) -> list[RegionBenchmark]:
    return list(
        session.scalars(
            select(RegionBenchmark).where(RegionBenchmark.region == region).order_by(RegionBenchmark.metric, RegionBenchmark.kind, RegionBenchmark.valid_from)
        )
    )


def remove_benchmark(session: Session, region: str, benchmark_id: int) -> None:
    row = session.get(RegionBenchmark, benchmark_id)
    if row is None or row.region != region:
        raise UnknownBenchmark(region, benchmark_id)
    session.delete(row)


def benchmarks_on(session: Session, region: str, on: date) -> dict[tuple[str, str], RegionBenchmark]:
    """(metric, kind) -> the region's benchmark of that metric and kind valid on `on` (a period's last
    day), all in one query; where several are, the latest start wins."""
    rows = session.scalars(
        select(RegionBenchmark)
        .where(
            RegionBenchmark.region == region,
            RegionBenchmark.valid_from <= on,
            (RegionBenchmark.valid_to.is_(None)) | (RegionBenchmark.valid_to >= on),
        )
        .order_by(RegionBenchmark.valid_from)
    )
    return {(row.metric, row.kind): row for row in rows}
