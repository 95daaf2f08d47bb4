"""The clinic profile of a unit as a one-page PDF (server/profile/), for the yearly dialogue meeting.

The same roles and scope as the unit's figures. It names the unit's doctors by pseudonym, so each
download is recorded in the access log, as the report's are."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import select

from ..access_log.log import record_principal
from ..profile import MonthNotEnded, clinic_profile, last_ended_month
from ..web.profile_pdf import profile_pdf
from ..registry import UnknownUnit
from ..storage.registry_tables import UnitRow
from .deps import FigureReader, ServicesDep, SessionDep, UnitInPath, confine_to_unit

router = APIRouter(prefix="/units/{unit}", tags=["units"])
PDF = "application/pdf"


@router.get(
    "/profile.pdf",
    response_class=Response,
    responses={200: {"content": {PDF: {}}, "description": "The clinic profile, one A4 page in Swedish"}, 409: {"description": "the month has not ended"}},
)
def unit_profile(
    request: Request,
    principal: FigureReader,
    unit: UnitInPath,
    session: SessionDep,
    services: ServicesDep,
    month: Annotated[
        str | None,
        Query(pattern=r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$", description="the last of the 12 months, YYYY-MM; default: the last ended month"),
    ] = None,
) -> Response:
    """12 months of the unit's four figures against its target and the region's figure, and the listed
    patients per doctor (as pseudonyms) against the guideline of 1 100; every figure as the API gives it."""
    row = confine_to_unit(session, principal, unit)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(UnknownUnit(unit).args[0]))
    now = datetime.now(timezone.utc)
    config = services.units.config(unit)
    last = date(int(month[:4]), int(month[5:7]), 1) if month else last_ended_month(now.astimezone(config.tz).date())
    region_units = list(session.scalars(select(UnitRow).where(UnitRow.region == row.region).order_by(UnitRow.unit)))
    try:
        profile = clinic_profile(services.figures, session, row, region_units, services.units.config(unit, last), last, now)
    except MonthNotEnded as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    record_principal(services.sessions, principal, request, "read:profile", unit=unit, region=row.region, detail=f"profile {last:%Y-%m}")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", unit)
    headers = {"Content-Disposition": f'attachment; filename="vardkoll-klinikprofil-{name}-{last:%Y-%m}.pdf"'}
    return Response(profile_pdf(profile), media_type=PDF, headers=headers)
