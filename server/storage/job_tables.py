"""Tables the scheduled jobs write: alerts for people to act on, self-audit outcomes, sweep marks.

The job lease itself (`leases`) is in `registry_tables`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime

ALERT_KINDS = (
    "assessment_overdue",
    "assessment_at_risk",
    "telephone_below_target",
    "collector_silent",
    "outbox_growing",
    "audit_mismatch",
    "dead_letter_burst",
)


class Alert(SQLModel, table=True):
    """Something a unit should act on. One row per (unit, kind, subject): a case alerts once; a silent
    collector's alert is cleared when it is seen again and raised anew (same row) if it falls silent again."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("unit", "kind", "subject", name="uq_alerts_unit_kind_subject"),
        Index("ix_alerts_unit_created_at", "unit", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    unit: str = Field(max_length=40)
    kind: str = Field(max_length=32)  # one of ALERT_KINDS
    subject: str = Field(max_length=64)  # a case pseudonym, a device id, or "<day>/<metric>" for an audit
    detail: str = Field(sa_column=Column(Text, nullable=False))  # JSON, never personal data
    created_at: datetime = Field(sa_type=UtcDateTime)
    cleared_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Set when the alert was handed to the delivery outbox (server/alerts/outbox.py); null again when raised anew.
    notified_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=200)  # the token's name


class AuditRow(SQLModel, table=True):
    """The nightly self-audit of one unit, day and metric: the stored figure against a re-computation
    from the raw events."""

    __tablename__ = "audits"
    __table_args__ = (UniqueConstraint("unit", "day", "metric", name="uq_audits_unit_day_metric"),)

    id: int | None = Field(default=None, primary_key=True)
    unit: str = Field(max_length=40)
    day: date
    metric: str = Field(max_length=32)
    ok: bool
    difference: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON; null when ok
    checked_at: datetime = Field(sa_type=UtcDateTime)


class SweepMark(SQLModel, table=True):
    """Per unit, when the deadline sweep last looked and at which data version (`unit_activity.version`)."""

    __tablename__ = "sweep_marks"

    unit: str = Field(primary_key=True, max_length=40)
    swept_at: datetime = Field(sa_type=UtcDateTime)
    data_version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
