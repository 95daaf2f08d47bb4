"""The access log (admin only): who read case-level data or changed something, newest first."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from ..access_log import read_access_log
from .deps import Admin, SessionDep, check_hsa_id, invalid

router = APIRouter(tags=["access log"])


class AccessRecordPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    who: str
    token_id: int | None
    role: str
    action: str
    unit: str | None
    region: str | None
    detail: str
    client: str


@router.get("/access-log")
def access_log(
    _: Admin,
    session: SessionDep,
    period_from: Annotated[date | None, Query(alias="from", description="first UTC date")] = None,
    period_to: Annotated[date | None, Query(alias="to", description="last UTC date")] = None,
    unit: Annotated[str | None, Query(description="one unit's HSA-id")] = None,
    action: Annotated[str | None, Query(description="an action or its start: read (read:events, read:at_risk) or change")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AccessRecordPublic]:
    if period_from and period_to and period_to < period_from:
        raise invalid("query", "to", f"'to' ({period_to}) is before 'from' ({period_from})")
    since = datetime.combine(period_from, time(0), tzinfo=timezone.utc) if period_from else None
    until = datetime.combine(period_to + timedelta(days=1), time(0), tzinfo=timezone.utc) if period_to else None
    rows = read_access_log(session, since, until, check_hsa_id(unit, "query", "unit") if unit else None, action, limit)
    return [AccessRecordPublic.model_validate(row) for row in rows]
