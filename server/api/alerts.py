"""Alerts (list, filter, acknowledge), their rules per unit and region, subscriptions and deliveries."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import ValidationError
from sqlalchemy import select

from ..access_log.log import record_principal
from ..alerts.rules import AlertRulesPatch, effective_rules, set_overrides, stored_overrides
from ..alerts.store import acknowledge, query_alerts, record
from ..alerts.subscriptions import SubscriptionIn, SubscriptionOut, new_row
from ..auth import Principal, Role, visible_units
from ..storage.alert_tables import DeliveryRow, SubscriptionRow
from ..storage.job_tables import ALERT_KINDS, Alert
from ..storage.registry_tables import UnitRow
from .deps import Admin, RegistryReader, RowId, ServicesDep, SessionDep, UnitInPath, check_hsa_id, confine_to_unit, invalid

router = APIRouter(tags=["alerts"])

State = Literal["open", "unacknowledged", "acknowledged", "cleared", "all"]


def _visible_unit_filter(session: SessionDep, principal: Principal) -> list[str] | None:
    """None: every unit; else the units the principal may see."""
    if principal.role is Role.admin or (principal.role is Role.installer and principal.region is None and principal.unit is None):
        return None
    return visible_units(principal, session.execute(select(UnitRow.unit, UnitRow.region)).all())


def list_alerts(session: SessionDep, principal: Principal, unit: str | None, kind: str | None, state: State, limit: int) -> list[dict[str, Any]]:
    if unit is not None:
        confine_to_unit(session, principal, unit)
        units: list[str] | None = [unit]
    else:
        units = _visible_unit_filter(session, principal)
    return [alert.to_dict() for alert in query_alerts(session, units, kind, state, limit)]


@router.get("/alerts")
def alerts(
    principal: RegistryReader,
    session: SessionDep,
    services: ServicesDep,
    request: Request,
    unit: Annotated[str | None, Query(description="only this unit's")] = None,
    kind: Annotated[str | None, Query(description=f"only this kind: {', '.join(ALERT_KINDS)}")] = None,
    state: Annotated[State, Query(description="open (not cleared), unacknowledged, acknowledged, cleared or all")] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Newest first, within the token's scope."""
    if unit is not None:
        check_hsa_id(unit, "query", "unit")
    if kind is not None and kind not in ALERT_KINDS:
        raise invalid("query", "kind", f"'kind' must be one of: {', '.join(ALERT_KINDS)}")
    found = list_alerts(session, principal, unit, kind, state, limit)
    # Alerts name cases by pseudonym: a read of case-level data.
    record_principal(services.sessions, principal, request, "read:alerts", unit=unit, detail=f"alerts state={state} n={len(found)}")
    return found


def _acknowledge(session: SessionDep, principal: Principal, alert_id: int, now: datetime) -> dict[str, Any]:
    row = session.get(Alert, alert_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    confine_to_unit(session, principal, row.unit)
    if acknowledge(session, alert_id, principal.name, now):  # the first acknowledgement stands
        session.commit()
        session.refresh(row)
    return record(row).to_dict()


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(principal: RegistryReader, session: SessionDep, alert_id: RowId) -> dict[str, Any]:
    """Record who acknowledged the alert and when (the token's name); acknowledging again changes nothing."""
    return _acknowledge(session, principal, alert_id, datetime.now(timezone.utc))


# -- rules -------------------------------------------------------------------------------------------------


@router.get("/alert-rules/units/{unit}")
def unit_rules(principal: RegistryReader, session: SessionDep, unit: UnitInPath) -> dict[str, Any]:
    """The rules in force for the unit, and the overrides of its region and of the unit itself."""
    row = confine_to_unit(session, principal, unit)
    region = row.region if row else None
    return {
        "unit": unit,
        "region": region,
        "effective": effective_rules(session, unit, region).model_dump(mode="json"),
        "region_overrides": stored_overrides(session, "region", region) if region else {},
        "unit_overrides": stored_overrides(session, "unit", unit),
    }


def _set(session: SessionDep, principal: Principal, scope: Literal["region", "unit"], key: str, patch: AlertRulesPatch) -> dict[str, Any]:
    try:
        stored = set_overrides(session, scope, key, patch, principal.name[:200], datetime.now(timezone.utc))
    except ValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors(include_url=False, include_context=False)) from None
    session.commit()
    return {"scope": scope, "key": key, "overrides": stored}


@router.put("/alert-rules/units/{unit}")
def set_unit_rules(principal: Admin, session: SessionDep, unit: UnitInPath, patch: AlertRulesPatch) -> dict[str, Any]:
    """Set some of the unit's rules (a field set to null inherits the region's again)."""
    return _set(session, principal, "unit", unit, patch)


@router.put("/alert-rules/regions/{region}")
def set_region_rules(principal: Admin, session: SessionDep, region: Annotated[str, Path(max_length=100)], patch: AlertRulesPatch) -> dict[str, Any]:
    """Defaults for every unit of the region that did not set the field itself."""
    return _set(session, principal, "region", region, patch)


# -- subscriptions -----------------------------------------------------------------------------------------


def _own_scope(principal: Principal, data: SubscriptionIn) -> bool:
    """A person may subscribe to exactly their token's scope: a manager their unit, an analyst their region,
    an installer the devices of their region."""
    if principal.role is Role.clinic_manager:
        return data.scope == "unit" and data.unit == principal.unit
    if principal.role is Role.region_analyst:
        return data.scope == "region" and data.region == principal.region
    if principal.role is Role.installer:
        return data.scope == "devices" and data.region == principal.region
    return False


@router.post("/alert-subscriptions", status_code=status.HTTP_201_CREATED)
def create_subscription(principal: RegistryReader, session: SessionDep, data: SubscriptionIn) -> SubscriptionOut:
    """Admins subscribe anyone to any scope; others only themselves, to their own token's scope."""
    if principal.role is not Role.admin and not _own_scope(principal, data):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a subscription of this token must have the token's own scope (its unit, region or devices)")
    if data.unit is not None:
        check_hsa_id(data.unit, "body", "unit")
    row = new_row(data, principal.name[:200], principal.token_id if principal.role is not Role.admin else None, datetime.now(timezone.utc))
    session.add(row)
    session.commit()
    session.refresh(row)
    return SubscriptionOut.of(row)


@router.get("/alert-subscriptions")
def subscriptions(principal: RegistryReader, session: SessionDep) -> list[SubscriptionOut]:
    """Admins see all; others those made with their token."""
    query = select(SubscriptionRow).order_by(SubscriptionRow.id)
    if principal.role is not Role.admin:
        query = query.where(SubscriptionRow.token_id == principal.token_id)
    return [SubscriptionOut.of(row) for row in session.scalars(query)]


@router.delete("/alert-subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(principal: RegistryReader, session: SessionDep, subscription_id: RowId) -> None:
    row = session.get(SubscriptionRow, subscription_id)
    if row is None or (principal.role is not Role.admin and (row.token_id is None or row.token_id != principal.token_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription {subscription_id} of this token")
    session.delete(row)
    session.commit()


@router.get("/alert-deliveries")
def deliveries(
    principal: Admin,
    session: SessionDep,
    state: Annotated[Literal["pending", "sending", "sent", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """The outbox, newest first: what went out to whom, what waits and why (the message itself is not shown)."""
    query = select(DeliveryRow)
    if state is not None:
        query = query.where(DeliveryRow.status == state)
    rows = session.scalars(query.order_by(DeliveryRow.id.desc()).limit(limit))
    return [
        {
            "id": r.id,
            "message_key": r.message_key,
            "channel": r.channel,
            "recipient": r.recipient,
            "unit": r.unit,
            "status": r.status,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at.isoformat(),
            "sent_at": r.sent_at.isoformat() if r.sent_at else None,
            "last_error": r.last_error,
        }
        for r in rows
    ]
