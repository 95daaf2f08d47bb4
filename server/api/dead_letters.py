"""Refused events and payloads, newest first: why, from where, when (never their content)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from ..auth import Role, visible_units
from ..storage.registry_tables import UnitRow
from ..storage.tables import DeadLetter
from .deps import DeadLetterReader, SessionDep, check_hsa_id, confine_to_unit, invalid
from .figure_query import parse_moment

router = APIRouter(tags=["dead letters"])


class DeadLetterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    received_at: datetime
    source: str  # mqtt | http
    unit: str | None
    device: str | None
    event_id: str | None
    reason: str
    payload_sha256: str | None
    payload_bytes: int | None


@router.get("/dead-letters")
def dead_letters(
    principal: DeadLetterReader,
    session: SessionDep,
    unit: Annotated[str | None, Query(description="only this unit's")] = None,
    since: Annotated[str | None, Query(description="only those received at or after this time (with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterPublic]:
    """Admins and installers without a region see all; everyone else only their units'."""
    query = select(DeadLetter)
    if unit is not None:
        confine_to_unit(session, principal, check_hsa_id(unit, "query", "unit"))
        query = query.where(DeadLetter.unit == unit)
    elif principal.unit is not None:
        query = query.where(DeadLetter.unit == principal.unit)
    elif principal.role is not Role.admin and principal.region is not None:
        units = visible_units(principal, session.execute(select(UnitRow.unit, UnitRow.region)).all())
        query = query.where(DeadLetter.unit.in_(units))
    if since is not None:
        moment = parse_moment(since)
        if moment is None:
            raise invalid("query", "since", "'since' must be a time with offset such as 2026-03-31T12:00:00+02:00 (encode + as %2B)")
        query = query.where(DeadLetter.received_at >= moment)
    rows = session.scalars(query.order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc()).limit(limit))
    return [DeadLetterPublic.model_validate(row) for row in rows]
