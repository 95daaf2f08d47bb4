"""The monthly national report of a region (server/reports/): the report in a version and a variant
as JSON, CSV or XLSX; its versions; what changed between two.

Admins see every region, region analysts their own; both may have the internal variant. A clinic
manager may have the public variant of its own unit's region only."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from ..access_log.log import record_principal
from ..auth import Principal, Role
from ..reports import MEDIA_TYPES, WRITERS, NotEnded, diff, report_for, variant_of, versions
from ..reports.model import MonthKept, MonthlyReport, ReportDiff, ReportVersion
from ..reports.store import months_kept
from ..storage.report_tables import MonthlyReportVersion
from .deps import FigureReader, ServicesDep, SessionDep, confine_to_region

router = APIRouter(prefix="/reports/monthly/{region}", tags=["reports"])
RegionInPath = Annotated[str, Path(min_length=1, max_length=100, description="the region's name, as units are registered with it")]
MonthInPath = Annotated[str, Path(pattern=r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$", description="the month, YYYY-MM (1900 to 2999)")]
VariantQuery = Annotated[Literal["public", "internal"], Query(description="public: cells under 20 hidden; internal: every cell")]
Format = Literal["json", "csv", "xlsx"]


def _allowed(session: SessionDep, principal: Principal, region: str, variant: str) -> None:
    confine_to_region(session, principal, region)
    if principal.role is Role.clinic_manager and variant != "public":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a clinic manager's token may have the public report only (variant=public)")


def _month(value: str) -> date:
    return date(int(value[:4]), int(value[5:7]), 1)


def _version(services: ServicesDep, region: str, month: str, number: int | None) -> MonthlyReportVersion:
    try:
        row = report_for(services, region, _month(month), datetime.now(timezone.utc), number)
    except NotEnded as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the report of {region} for {month} has no version {number}")
    return row


@router.get("", response_model=list[MonthKept])
def months(principal: FigureReader, region: RegionInPath, session: SessionDep) -> list[MonthKept]:
    """The months whose report is kept, newest first, with their latest version."""
    confine_to_region(session, principal, region)
    return [MonthKept(month=f"{month:%Y-%m}", latest_version=number) for month, number in months_kept(session, region)]


@router.get(
    "/{month}",
    response_model=MonthlyReport,
    responses={200: {"content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["xlsx"]: {}}, "description": "The report (JSON, or a CSV or XLSX file)"}},
)
def monthly_report(
    request: Request,
    principal: FigureReader,
    region: RegionInPath,
    month: MonthInPath,
    session: SessionDep,
    services: ServicesDep,
    variant: VariantQuery = "public",
    format: Annotated[Format, Query(description="json, csv (Swedish Excel: ';', decimal comma, UTF-8 with BOM) or xlsx")] = "json",
    version: Annotated[int | None, Query(ge=1, le=1_000_000, description="default: the latest")] = None,
) -> Response:
    """The region's report for an ended month, as known at the month's last instant. The job makes it
    after the month ends; asked for before, it is made on the spot (version 1)."""
    _allowed(session, principal, region, variant)
    row = _version(services, region, month, version)
    record_principal(services.sessions, principal, request, "read:report", region=region, detail=f"report {month} v{row.version} {variant}")
    report = variant_of(row, variant)
    headers = {}
    if format != "json":
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", region)
        headers["Content-Disposition"] = f'attachment; filename="vardkoll-rapport-{name}-{month}-v{row.version}-{variant}.{format}"'
    return Response(WRITERS[format](report), media_type=MEDIA_TYPES[format], headers=headers)


@router.get("/{month}/versions", response_model=list[ReportVersion])
def report_versions(principal: FigureReader, region: RegionInPath, month: MonthInPath, session: SessionDep) -> list[ReportVersion]:
    confine_to_region(session, principal, region)
    return [ReportVersion(version=r.version, made_at=r.made_at, checked_at=r.checked_at, digest=r.digest) for r in versions(session, region, _month(month))]


@router.get("/{month}/diff", response_model=ReportDiff)
def report_diff(
    principal: FigureReader,
    region: RegionInPath,
    month: MonthInPath,
    session: SessionDep,
    services: ServicesDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=1_000_000)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=1_000_000)],
    variant: VariantQuery = "public",
) -> ReportDiff:
    """Every cell whose value differs between two versions (in the public variant a hidden cell is null)."""
    _allowed(session, principal, region, variant)
    old = variant_of(_version(services, region, month, from_version), variant)
    new = variant_of(_version(services, region, month, to_version), variant)
    return ReportDiff.model_validate(
        {"region": region, "month": month, "variant": variant, "from_version": from_version, "to_version": to_version, "changes": diff(old, new)}
    )
