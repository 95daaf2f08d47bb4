"""Larm: the alerts of the units one may see, filtered by unit, kind and state, and acknowledged (who, when).

Acknowledging is a page form with the session's CSRF token (csrf.py), like Installationsvy's forms.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from vardkoll.protocol.field_rules import is_hsa_id

from ..api.deps import RowId
from ..access_log.log import record_principal
from ..alerts.messages import TITLES
from ..alerts.store import STATES, acknowledge, query_alerts
from ..auth import REGISTRY_READERS, Principal, Role, require_role, visible_units
from ..storage.job_tables import ALERT_KINDS, Alert
from ..storage.registry_tables import UnitRow
from .csrf import FIELD as CSRF_FIELD, csrf_token, read_form
from .pages import PageError, error_page, forbidden, login_redirect, page, render, services_of
from .session import signed_in

alerts_router = APIRouter(include_in_schema=False)

# Swedish names in the address bar and on the page.
STATE_PARAMS = {"oppna": "open", "okvitterade": "unacknowledged", "kvitterade": "acknowledged", "atgardade": "cleared", "alla": "all"}
STATE_NAMES = {"oppna": "öppna", "okvitterade": "ej kvitterade", "kvitterade": "kvitterade", "atgardade": "åtgärdade", "alla": "alla"}
assert set(STATE_PARAMS.values()) == set(STATES)


def _units(request: Request, principal: Principal) -> dict[str, tuple[str, str]]:
    """unit -> (name, time zone) of the units the principal may see."""
    with services_of(request).sessions() as session:
        rows = session.execute(select(UnitRow.unit, UnitRow.name, UnitRow.region, UnitRow.time_zone)).all()
    visible = set(visible_units(principal, [(unit, region) for unit, _, region, _ in rows]))
    return {unit: (name, zone) for unit, name, _, zone in rows if unit in visible}


@alerts_router.get("/larm", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    enhet: Annotated[str | None, Query()] = None,
    typ: Annotated[str | None, Query()] = None,
    status: Annotated[str, Query()] = "oppna",
) -> Response:
    def build(principal: Principal) -> Response:
        try:
            require_role(principal, REGISTRY_READERS)
        except Exception:
            raise forbidden(principal, "larmen") from None
        units = _units(request, principal)
        if enhet and (not is_hsa_id(enhet) or enhet not in units):
            raise (
                forbidden(principal, f"larmen för enheten {enhet}")
                if is_hsa_id(enhet)
                else PageError(404, "Okänd enhet", "Adressen innehåller inget giltigt HSA-id.")
            )
        kind = typ if typ in ALERT_KINDS else None
        state = status if status in STATE_PARAMS else "oppna"
        all_units = principal.role is Role.admin or (principal.role is Role.installer and principal.region is None)
        wanted = [enhet] if enhet else (None if all_units else sorted(units))
        with services_of(request).sessions() as session:
            alerts = query_alerts(session, wanted, kind, STATE_PARAMS[state], 500)
        # Alerts name cases by pseudonym: a read of case-level data, recorded before it is served.
        record_principal(services_of(request).sessions, principal, request, "read:alerts", unit=enhet or None, detail=f"Larm {state}")
        return render(
            request,
            "larm.html",
            principal=principal,
            alerts=alerts,
            units=units,
            titles=TITLES,
            kinds=ALERT_KINDS,
            states=STATE_NAMES,
            enhet=enhet or "",
            typ=kind or "",
            state=state,
            csrf=csrf_token(request),
            csrf_field=CSRF_FIELD,
            back=request.url.query,
        )

    return page(request, build)


@alerts_router.post("/larm/{alert_id}/kvittera")
async def acknowledge_alert(request: Request, alert_id: RowId) -> Response:
    principal = signed_in(request)
    if principal is None:
        return login_redirect(request)
    form = await read_form(request)
    if form is None:
        return error_page(
            request,
            principal,
            PageError(
                403, "Formuläret kunde inte tas emot", "Formuläret har gått ut eller kom från en annan webbplats. Öppna sidan Larm igen och försök på nytt."
            ),
        )
    services = services_of(request)
    with services.sessions.begin() as session:
        row = session.get(Alert, alert_id)
        if row is None or row.unit not in _units(request, principal) or principal.role not in REGISTRY_READERS:
            return error_page(request, principal, PageError(404, "Okänt larm", f"Larm {alert_id} finns inte, eller så har du inte behörighet att se det."))
        acknowledge(session, alert_id, principal.name, datetime.now(timezone.utc))
    back = form.get("tillbaka", "")
    query = {k: v for k, v in (pair.split("=", 1) for pair in back.split("&") if "=" in pair) if k in ("enhet", "typ", "status")}
    return RedirectResponse("/larm" + (f"?{urlencode(query)}" if query else ""), status_code=303)
