"""Tables for what people manage: units and their targets, API tokens, devices, job leases."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime


class UnitRow(SQLModel, table=True):
    __tablename__ = "units"

    unit: str = Field(primary_key=True, max_length=40)  # HSA-id
    name: str = Field(max_length=200)
    region: str = Field(max_length=100, index=True)
    time_zone: str = Field(default="Europe/Stockholm", max_length=64)
    # JSON: {"mon": [["08:00", "17:00"]], ...}; null when no opening hours are configured.
    opening_hours: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    unreached_callback_counts: bool = True
    # For region follow-up (national reporting splits by ownership): offentlig | privat.
    ownership: str | None = Field(default=None, max_length=16)
    municipality_code: str | None = Field(default=None, max_length=4)  # SCB's four digits, e.g. 0380 Uppsala
    listed_patients: int | None = None  # as the region's listing register counts them


class RegionBenchmark(SQLModel, table=True):
    """A region's own target for a metric, or a value to compare with (the national figure), from
    `valid_from` through `valid_to` (open when null), entered by an admin."""

    __tablename__ = "region_benchmarks"
    __table_args__ = (UniqueConstraint("region", "metric", "kind", "valid_from", name="uq_region_benchmarks"),)

    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(max_length=100, index=True)
    metric: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # target | comparison
    label: str = Field(max_length=100)  # e.g. "Riket" for a comparison, "Regionens mål" for a target
    value: float
    valid_from: date
    valid_to: date | None = None


class TargetRow(SQLModel, table=True):
    """A unit's target for a metric from `valid_from` (inclusive) until `valid_to` (inclusive, open if null)."""

    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("unit", "metric", "valid_from", name="uq_targets_unit_metric_from"),)

    id: int | None = Field(default=None, primary_key=True)
    unit: str = Field(max_length=40, index=True)
    metric: str = Field(max_length=32)
    target: float | None = None
    valid_from: date
    valid_to: date | None = None


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=32)  # admin | region_analyst | clinic_manager | installer | device
    region: str | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, max_length=40)
    device: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # null only for tokens from before expiry existed
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # to within USE_RECORDED_EVERY
    rotated_from: int | None = None  # the token this one replaced (`tokens rotate`)
    # "token": issued by an admin; "sign_in": a browser's session after signing in at the region's identity
    # provider (server/sign_in/), valid in the session cookie only, never as a bearer token.
    kind: str = Field(default="token", max_length=16, sa_column_kwargs={"server_default": "token"})


class DeviceRow(SQLModel, table=True):
    __tablename__ = "devices"

    unit: str = Field(primary_key=True, max_length=40)
    device: str = Field(primary_key=True, max_length=64)
    registered_at: datetime = Field(sa_type=UtcDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    status: str | None = Field(default=None, max_length=16)  # online | offline, from the retained status topic
    last_seen_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_status: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the heartbeat JSON


class Lease(SQLModel, table=True):
    """Who runs the scheduled jobs: one holder at a time, renewed before `expires_at`."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UtcDateTime)
