"""Tables of alerting (`server/alerts/`): rules per unit and region, subscriptions, and the delivery outbox.

Alerts themselves are in `job_tables` (the jobs raise them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime


class AlertRuleRow(SQLModel, table=True):
    """Rule overrides for a region (every unit in it) or one unit: JSON of the fields set, the rest inherited."""

    __tablename__ = "alert_rules"

    scope: str = Field(primary_key=True, max_length=8)  # region | unit
    key: str = Field(primary_key=True, max_length=100)  # the region's name or the unit's HSA-id
    rules: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_type=UtcDateTime)
    updated_by: str = Field(max_length=200)


class SubscriptionRow(SQLModel, table=True):
    """Who gets which alerts, over which channel: scoped like the roles (a unit, a region, or devices)."""

    __tablename__ = "alert_subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)  # who this is for, as a person reads it (no personal data needed)
    scope: str = Field(max_length=8)  # unit | region | devices
    unit: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=100)  # devices scope: null means every region
    channel: str = Field(max_length=8)  # email | webhook
    address: str = Field(max_length=500)  # an e-mail address or an https URL
    secret: str | None = Field(default=None, max_length=200)  # the webhook's HMAC key
    kinds: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON list; null: all of the scope
    quiet_from: str | None = Field(default=None, max_length=5)  # HH:MM local; held until quiet_to
    quiet_to: str | None = Field(default=None, max_length=5)
    time_zone: str = Field(default="Europe/Stockholm", max_length=64)
    digest: bool = False  # also the morning digest "Dagens läge" of each unit in scope
    token_id: int | None = None  # made by this token for its own scope (null: by an admin)
    created_at: datetime = Field(sa_type=UtcDateTime)
    created_by: str = Field(max_length=200)


class DeliveryRow(SQLModel, table=True):
    """One message to one recipient over one channel. `message_key` names what is said (an alert as raised,
    or a unit's digest of a day); the unique key makes handing it out again a no-op."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("message_key", "channel", "recipient", name="uq_alert_deliveries_message_channel_recipient"),
        Index("ix_alert_deliveries_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_key: str = Field(max_length=120)  # alert:<id>:<raised at, epoch s> | digest:<unit>:<day>
    channel: str = Field(max_length=8)
    recipient: str = Field(max_length=500)
    subscription_id: int
    unit: str | None = Field(default=None, max_length=40)
    message: str = Field(sa_column=Column(Text, nullable=False))  # JSON: subject, text, fields, link
    status: str = Field(max_length=8)  # pending | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UtcDateTime)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_type=UtcDateTime)
