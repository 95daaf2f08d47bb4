"""Subscriptions: who is told about which alerts, scoped like the roles.

- `unit`: every alert of one unit (a clinic manager's).
- `region`: every alert of the units in a region (a region analyst's).
- `devices`: the device alerts (silent collector, growing outbox, dead letters) of a region, or of every
  region when `region` is null (an installer's).

`kinds` narrows a subscription to some kinds. A subscription hears of alerts raised after it was made.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vardkoll.protocol.local_time_fields import TimeZoneName

from ..storage.alert_tables import SubscriptionRow
from ..storage.job_tables import ALERT_KINDS
from .store import DEVICE_KINDS


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="who this is for, e.g. 'Vårdcentralen Norrby, verksamhetschef'")
    scope: Literal["unit", "region", "devices"]
    unit: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=100)
    channel: Literal["email", "webhook"]
    address: str = Field(min_length=3, max_length=500, description="an e-mail address, or the webhook's https URL")
    secret: str | None = Field(default=None, min_length=16, max_length=200, description="the webhook's HMAC-SHA256 key")
    kinds: list[str] | None = Field(default=None, description=f"only these kinds (of {', '.join(ALERT_KINDS)}); null: all")
    quiet_from: time | None = Field(default=None, description="local time from which messages are held ...")
    quiet_to: time | None = Field(default=None, description="... until this local time, then sent")
    time_zone: TimeZoneName = "Europe/Stockholm"
    digest: bool = Field(default=False, description="also the morning digest 'Dagens läge' of each unit in scope")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        unknown = sorted(set(kinds or ()) - set(ALERT_KINDS))
        if unknown:
            raise ValueError(f"unknown kinds {', '.join(unknown)}; expected some of: {', '.join(ALERT_KINDS)}")
        return kinds

    @model_validator(mode="after")
    def _consistent(self) -> "SubscriptionIn":
        if self.scope == "unit" and not self.unit:
            raise ValueError("a unit subscription needs 'unit'")
        if self.scope == "region" and not self.region:
            raise ValueError("a region subscription needs 'region'")
        if self.scope != "unit" and self.unit:
            raise ValueError("'unit' is only for scope 'unit'")
        if self.channel == "email" and ("@" not in self.address or any(c in self.address for c in " \r\n,;<>")):
            raise ValueError("'address' must be one e-mail address")
        if self.channel == "webhook" and not self.address.startswith(("https://", "http://")):
            raise ValueError("'address' must be the webhook's URL (https://…)")
        if (self.quiet_from is None) != (self.quiet_to is None):
            raise ValueError("give both 'quiet_from' and 'quiet_to', or neither")
        return self


class SubscriptionOut(BaseModel):
    id: int
    name: str
    scope: str
    unit: str | None
    region: str | None
    channel: str
    address: str
    has_secret: bool
    kinds: list[str] | None
    quiet_from: str | None
    quiet_to: str | None
    time_zone: str
    digest: bool
    created_at: datetime
    created_by: str

    @staticmethod
    def of(row: SubscriptionRow) -> "SubscriptionOut":
        assert row.id is not None
        return SubscriptionOut(
            id=row.id,
            name=row.name,
            scope=row.scope,
            unit=row.unit,
            region=row.region,
            channel=row.channel,
            address=row.address,
            has_secret=bool(row.secret),
            kinds=orjson.loads(row.kinds) if row.kinds else None,
            quiet_from=row.quiet_from,
            quiet_to=row.quiet_to,
            time_zone=row.time_zone,
            digest=row.digest,
            created_at=row.created_at,
            created_by=row.created_by,
        )


def new_row(data: SubscriptionIn, by: str, token_id: int | None, now: datetime) -> SubscriptionRow:
    return SubscriptionRow(
        name=data.name,
        scope=data.scope,
        unit=data.unit,
        region=data.region,
        channel=data.channel,
        address=data.address,
        secret=data.secret,
        kinds=orjson.dumps(data.kinds).decode() if data.kinds is not None else None,
        quiet_from=data.quiet_from.strftime("%H:%M") if data.quiet_from else None,
        quiet_to=data.quiet_to.strftime("%H:%M") if data.quiet_to else None,
        time_zone=data.time_zone,
        digest=data.digest,
        token_id=token_id,
        created_at=now,
        created_by=by,
    )


def covers(row: SubscriptionRow, unit: str, region: str | None, kind: str) -> bool:
    """Does this subscription want alert `kind` of `unit` (in `region`)?"""
    if row.kinds and kind not in orjson.loads(row.kinds):
        return False
    if row.scope == "unit":
        return row.unit == unit
    if row.scope == "region":
        return region is not None and row.region == region
    return kind in DEVICE_KINDS and (row.region is None or row.region == region)


def digest_covers(row: SubscriptionRow, unit: str, region: str | None) -> bool:
    if not row.digest:
        return False
    return row.unit == unit if row.scope == "unit" else row.scope == "region" and region is not None and row.region == region


def held_until(row: SubscriptionRow, now: datetime) -> datetime:
    """When a message to this subscription may go out: `now`, or the end of its quiet hours."""
    if not row.quiet_from or not row.quiet_to:
        return now
    zone = ZoneInfo(row.time_zone)
    local = now.astimezone(zone)
    start, end = time.fromisoformat(row.quiet_from), time.fromisoformat(row.quiet_to)
    moment = local.time().replace(tzinfo=None)
    quiet = start <= moment < end if start <= end else (moment >= start or moment < end)  # e.g. 21:00–07:00
    if not quiet:
        return now
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone)
