"""Alert rules: built-in defaults, overridden per region, overridden again per unit.

A stored override holds only the fields it sets, so a region's change reaches every unit that did not set
that field itself. `effective_rules(session, unit, region)` is what the checks and the delivery use.

    {"at_risk_hours": 24, "overdue": true, "telephone_check_times": ["10:00", "14:00"],
     "collector_silent": true, "outbox_depth_at_least": 500, "audit_mismatch": true,
     "dead_letters_at_least": 20, "dead_letter_window_minutes": 10, "digest_at": "07:00"}
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.alert_tables import AlertRuleRow
from ..storage.upsert import dialect_insert


class AlertRules(BaseModel):
    """What raises an alert for a unit. A threshold of 0 (or an empty list, or null) turns that alert off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at_risk_hours: int = Field(default=24, ge=0, le=72, description="a 3-day case alerts when its deadline is this near")
    overdue: bool = Field(default=True, description="a 3-day case past its deadline")
    telephone_check_times: list[time] = Field(
        default=[time(10), time(14)], max_length=8, description="local times at which today's telephone figure is held to its target"
    )
    collector_silent: bool = True
    outbox_depth_at_least: int = Field(default=500, ge=0, description="a collector's outbox (from its heartbeat) this deep")
    audit_mismatch: bool = True
    dead_letters_at_least: int = Field(default=20, ge=0, description="this many refused events for the unit ...")
    dead_letter_window_minutes: int = Field(default=10, ge=1, le=1440, description="... within this many minutes")
    digest_at: time | None = Field(default=time(7), description="local time of the morning digest 'Dagens läge'; null: none")


class AlertRulesPatch(BaseModel):
    """An override: only the fields given are set (null in a field means "inherit" again)."""

    model_config = ConfigDict(extra="forbid")

    at_risk_hours: int | None = Field(default=None, ge=0, le=72)
    overdue: bool | None = None
    telephone_check_times: list[time] | None = Field(default=None, max_length=8)
    collector_silent: bool | None = None
    outbox_depth_at_least: int | None = Field(default=None, ge=0)
    audit_mismatch: bool | None = None
    dead_letters_at_least: int | None = Field(default=None, ge=0)
    dead_letter_window_minutes: int | None = Field(default=None, ge=1, le=1440)
    digest_at: time | None = None


Scope = Literal["region", "unit"]


def _overrides(session: Session, scope: Scope, key: str) -> dict[str, Any]:
    row = session.get(AlertRuleRow, (scope, key))
    return orjson.loads(row.rules) if row is not None else {}


def effective_rules(session: Session, unit: str, region: str | None) -> AlertRules:
    merged = _overrides(session, "region", region) if region else {}
    merged.update(_overrides(session, "unit", unit))
    return AlertRules.model_validate(merged)


def all_effective_rules(session: Session, units: dict[str, str | None]) -> dict[str, AlertRules]:
    """Rules of every unit in `units` (unit -> region), from one read of the overrides."""
    stored = {(row.scope, row.key): orjson.loads(row.rules) for row in session.scalars(select(AlertRuleRow))}
    result = {}
    for unit, region in units.items():
        merged = dict(stored.get(("region", region), {})) if region else {}
        merged.update(stored.get(("unit", unit), {}))
        result[unit] = AlertRules.model_validate(merged)
    return result


def stored_overrides(session: Session, scope: Scope, key: str) -> dict[str, Any]:
    return _overrides(session, scope, key)


def set_overrides(session: Session, scope: Scope, key: str, patch: AlertRulesPatch, by: str, now: datetime) -> dict[str, Any]:
    """Merge `patch` into the stored override (a null field is removed); return the override now stored."""
    current = _overrides(session, scope, key)
    for name, value in patch.model_dump(mode="json", exclude_unset=True).items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = value
    AlertRules.model_validate(current)  # the merged override must be valid on its own
    table = AlertRuleRow.__table__
    body = orjson.dumps(current, option=orjson.OPT_SORT_KEYS).decode()
    stmt = dialect_insert(session, table).values(scope=scope, key=key, rules=body, updated_at=now, updated_by=by)
    session.execute(stmt.on_conflict_do_update(index_elements=["scope", "key"], set_={"rules": body, "updated_at": now, "updated_by": by}))
    return current
