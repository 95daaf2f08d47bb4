"""Writing and reading access records."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..auth import Principal, Role
from ..storage.access_tables import AccessRecord

log = logging.getLogger("vardkoll.access")

ACTIONS_READ_CASES = ("read:events", "read:at_risk", "read:alerts")  # reads of case-level data
CHANGERS = frozenset({Role.admin, Role.installer, Role.clinic_manager, Role.region_analyst})  # devices only post events
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def client_of(request: Request) -> str:
    return (request.client.host if request.client else "")[:64]


def record_access(
    session: Session,
    who: str,
    role: str,
    action: str,
    *,
    token_id: int | None = None,
    unit: str | None = None,
    region: str | None = None,
    detail: str = "",
    client: str = "",
    now: datetime | None = None,
) -> None:
    """Add one record; the caller commits (with the change it records, where there is one)."""
    session.add(
        AccessRecord(
            at=now or datetime.now(timezone.utc),
            who=who[:200],
            token_id=token_id,
            role=role,
            action=action[:48],
            unit=unit,
            region=region,
            detail=detail[:300],
            client=client[:64],
        )
    )


def record_principal(
    sessions: sessionmaker[Session],
    principal: Principal,
    request: Request,
    action: str,
    *,
    unit: str | None = None,
    region: str | None = None,
    detail: str = "",
) -> None:
    """Record a read in its own transaction. A read is served only once it is recorded: a failure here raises."""
    with sessions.begin() as session:
        record_access(
            session,
            principal.name,
            principal.role.value,
            action,
            token_id=principal.token_id,
            unit=unit,
            region=region,
            detail=detail,
            client=client_of(request),
        )


def record_change_from_request(sessions: sessionmaker[Session], request: Request, status_code: int) -> None:
    """After a request that changed something (a write method answered below 400): who changed what.
    Requests of devices (events) and sign-ins that failed are not changes."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if getattr(request.state, "change_recorded", False):
        return  # the route recorded the change itself, with what it changed
    if principal is None or principal.role not in CHANGERS or request.method not in CHANGING_METHODS or status_code >= 400:
        return
    template = request.url.path[:300]  # ids in it (units, devices, tokens) name no person
    unit = request.path_params.get("unit") or request.path_params.get("hsa")
    try:
        with sessions.begin() as session:
            record_access(
                session,
                principal.name,
                principal.role.value,
                f"change:{request.method}",
                token_id=principal.token_id,
                unit=unit if isinstance(unit, str) else None,
                detail=str(template),
                client=client_of(request),
            )
    except SQLAlchemyError:
        # The change is committed already; losing its record must be seen, never silent.
        log.error("access log: could not record %s %s by token %s", request.method, template, principal.token_id)


def read_access_log(
    session: Session, since: datetime | None = None, until: datetime | None = None, unit: str | None = None, action: str | None = None, limit: int = 200
) -> list[AccessRecord]:
    """Newest first."""
    query = select(AccessRecord).order_by(AccessRecord.at.desc(), AccessRecord.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AccessRecord.at >= since)
    if until is not None:
        query = query.where(AccessRecord.at < until)
    if unit is not None:
        query = query.where(AccessRecord.unit == unit)
    if action is not None:
        query = query.where(AccessRecord.action.startswith(action))
    return list(session.scalars(query))


def trim_access_log(session: Session, before: datetime) -> int:
    return session.execute(delete(AccessRecord).where(AccessRecord.at < before)).rowcount
