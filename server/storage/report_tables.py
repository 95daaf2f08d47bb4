"""The monthly national report as it was made: one row per region, month and version (server/reports/)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Integer, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime


class MonthlyReportVersion(SQLModel, table=True):
    """A version of a region's report for a month. A new version is kept only when the report's content
    changed (a late event, a changed unit); `inputs` lets the job see cheaply that nothing did."""

    __tablename__ = "monthly_reports"
    __table_args__ = (UniqueConstraint("region", "month", "version", name="uq_monthly_reports_version"),)

    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(max_length=100, index=True)
    month: date  # the month's first day
    version: int = Field(sa_column=Column(Integer, nullable=False))
    made_at: datetime = Field(sa_type=UtcDateTime)
    checked_at: datetime = Field(sa_type=UtcDateTime)  # the last time the job found it current
    digest: str = Field(max_length=64)  # sha256 of the report's lines: equal digests, equal reports
    inputs: str = Field(max_length=64)  # sha256 of the units' data versions and settings it was made from
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # the internal report, JSON
