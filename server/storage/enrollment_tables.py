"""Tables for enrollment: one-time codes an installer hands to a new collector, and failed redemptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime


class EnrollmentCode(SQLModel, table=True):
    """A one-time enrollment code, stored only as its SHA-256; redeemed at most once, before `expires_at`."""

    __tablename__ = "enrollment_codes"

    id: int | None = Field(default=None, primary_key=True)
    code_sha256: str = Field(max_length=64, unique=True)
    unit: str = Field(max_length=40, index=True)
    device: str | None = Field(default=None, max_length=64)  # when set, only this device id may redeem it
    created_by: str = Field(max_length=200)  # the issuing token's name
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    redeemed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    redeemed_device: str | None = Field(default=None, max_length=64)


class EnrollmentFailure(SQLModel, table=True):
    """A failed redemption by a client (its address), for the guessing limit; old rows are pruned."""

    __tablename__ = "enrollment_failures"
    __table_args__ = (Index("ix_enrollment_failures_client_at", "client", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    client: str = Field(max_length=64)
    at: datetime = Field(sa_type=UtcDateTime)
