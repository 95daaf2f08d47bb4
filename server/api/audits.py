"""The nightly self-audit's outcomes (server/jobs/self_audit.py) for analysts: per unit, day and metric,
whether the stored figure equalled a re-computation from the raw events, and what differed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import col

from ..storage.job_tables import AuditRow
from .deps import FigureReader, SessionDep, UnitInPath, confine_to_unit, invalid

router = APIRouter(tags=["audits"])
MAX_DAYS = 366


class AuditResult(BaseModel):
    unit: str
    day: date = Field(description="the audited local date")
    metric: str
    ok: bool = Field(description="true when the stored figure equalled the re-computation")
    difference: dict[str, dict[str, Any]] = Field(description='every key that differed: {"details.pending": {"stored": 3, "recomputed": 4}}; empty when ok')
    checked_at: datetime


@router.get("/units/{unit}/audits", response_model=list[AuditResult])
def unit_audits(
    principal: FigureReader,
    unit: UnitInPath,
    session: SessionDep,
    period_from: Annotated[date, Query(alias="from", description="first audited local date")],
    period_to: Annotated[date, Query(alias="to", description="last audited local date")],
    mismatches_only: Annotated[bool, Query(description="only the outcomes that differed")] = False,
) -> list[AuditResult]:
    """The self-audit outcomes of a unit for the days in [from, to] (at most a year), by day then metric.
    A day without outcomes was not audited (the job audits yesterday, nightly): no row is not "ok"."""
    confine_to_unit(session, principal, unit)
    if period_to < period_from:
        raise invalid("query", "to", f"'to' ({period_to}) is before 'from' ({period_from})")
    if (period_to - period_from).days >= MAX_DAYS:
        raise invalid("query", "to", f"at most {MAX_DAYS} days per request")
    query = select(AuditRow).where(AuditRow.unit == unit, AuditRow.day >= period_from, AuditRow.day <= period_to)
    if mismatches_only:
        query = query.where(col(AuditRow.ok).is_(False))
    rows = session.scalars(query.order_by(col(AuditRow.day), col(AuditRow.metric))).all()
    return [
        AuditResult(unit=r.unit, day=r.day, metric=r.metric, ok=r.ok, difference=orjson.loads(r.difference) if r.difference else {}, checked_at=r.checked_at)
        for r in rows
    ]
