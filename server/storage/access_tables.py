"""The access log: who read case-level data or changed something, when, for which unit, from where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime


class AccessRecord(SQLModel, table=True):
    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_at", "at"), Index("ix_access_log_unit_at", "unit", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime)
    who: str = Field(max_length=200)  # the token's name (a person or system), never a personal number
    token_id: int | None = None  # None for VARDKOLL_ADMIN_TOKEN and the admin command line
    role: str = Field(max_length=32)
    action: str = Field(max_length=48)  # e.g. read:events, read:at_risk, change:unit
    unit: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=100)
    detail: str = Field(default="", max_length=300)  # what was asked or changed, without values of people
    client: str = Field(default="", max_length=64)  # the client's address, or "cli"
