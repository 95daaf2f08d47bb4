"""Installationsvy: devices per unit, one-time enrollment codes with a QR code, replacing a device.

The forms post with a CSRF token bound to the session (csrf.py); the API itself never accepts a
cookie for a write.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from vardkoll.protocol.field_rules import is_device_id

from ..alerts.store import DEVICE_KINDS, open_counts
from ..auth import DEVICE_MANAGERS, REGISTRY_READERS, Principal
from ..provisioning import BrokerAccountError, issue_code, replace_device
from ..registry import UnknownDevice
from ..storage.registry_tables import UnitRow
from .csrf import FIELD as CSRF_FIELD, csrf_token, read_form
from .pages import PageError, error_page, login_redirect, page, render, services_of, unit_row, utc_now
from .qr import qr_svg
from .session import signed_in
from .views import installation_view

log = logging.getLogger("vardkoll.provisioning")

installation_router = APIRouter(include_in_schema=False)


def _installation_page(request: Request, principal: Principal, row: UnitRow, status: int = 200, error: str | None = None) -> HTMLResponse:
    with services_of(request).sessions() as session:
        devices = installation_view(session, row.unit)
        alerts_open = open_counts(session, row.unit, DEVICE_KINDS)
    return render(
        request,
        "installation.html",
        status=status,
        principal=principal,
        unit=row,
        devices=devices,
        now=utc_now(),
        can_manage=principal.role in DEVICE_MANAGERS,
        csrf=csrf_token(request),
        csrf_field=CSRF_FIELD,
        validities=CODE_VALIDITY_HOURS,
        error=error,
        broker_accounts=services_of(request).broker_accounts is not None,
        alerts_open=alerts_open,
        alerts_unit=row.unit,
    )


@installation_router.get("/installation/{hsa}", response_class=HTMLResponse)
def installation(request: Request, hsa: str) -> Response:
    def build(principal: Principal) -> Response:
        row = unit_row(services_of(request), principal, hsa, REGISTRY_READERS, f"installationerna på enheten {hsa}")
        return _installation_page(request, principal, row)

    return page(request, build)


CODE_VALIDITY_HOURS = (1, 4, 24)


async def _device_form(request: Request, hsa: str, what: str) -> tuple[Principal, UnitRow, dict[str, str]] | Response:
    """The signed-in device manager, the unit and the checked form of a POST from Installationsvy."""
    principal = signed_in(request)
    if principal is None:
        return login_redirect(request)
    try:
        row = unit_row(services_of(request), principal, hsa, DEVICE_MANAGERS, what)
    except PageError as error:
        return error_page(request, principal, error)
    form = await read_form(request)
    if form is None:
        return error_page(
            request,
            principal,
            PageError(
                403,
                "Formuläret kunde inte tas emot",
                "Formuläret har gått ut eller kom från en annan webbplats. Öppna sidan Installationer igen och försök på nytt.",
            ),
        )
    return principal, row, form


def _validity(form: dict[str, str]) -> timedelta:
    hours = form.get("giltighet", "24")
    return timedelta(hours=int(hours) if hours.isdigit() and int(hours) in CODE_VALIDITY_HOURS else 24)


def _successor(form: dict[str, str]) -> str | None:
    """The device id the code is pinned to; None when left empty. Raises ValueError when malformed."""
    device = form.get("insamlare", "").strip()
    if device and not is_device_id(device):
        raise ValueError(f"”{device[:64]}” kan inte vara ett insamlar-id: använd 1–64 tecken av A–Z, a–z, 0–9 och . _ -")
    return device or None


def _code_page(request: Request, principal: Principal, row: UnitRow, issued: Any, replaced: str | None = None) -> HTMLResponse:
    server = str(request.base_url).rstrip("/")
    command = f"vardkoll collector enroll --server {server} --code {issued.code}" + (f" --device {issued.device}" if issued.device else "")
    return render(
        request,
        "engangskod.html",
        principal=principal,
        unit=row,
        issued=issued,
        replaced=replaced,
        server=server,
        command=command,
        qr=qr_svg(issued.code, f"QR-kod med engångskoden {issued.code}"),
    )


@installation_router.post("/installation/{hsa}/engangskod", response_class=HTMLResponse)
async def new_enrollment_code(request: Request, hsa: str) -> Response:
    """Issue a one-time enrollment code from the page (form with CSRF token, see csrf.py) and show it once, with a QR code."""
    checked = await _device_form(request, hsa, f"installationerna på enheten {hsa}")
    if isinstance(checked, Response):
        return checked
    principal, row, form = checked
    try:
        successor = _successor(form)
    except ValueError as problem:
        return _installation_page(request, principal, row, status=400, error=str(problem))
    with services_of(request).sessions.begin() as session:
        issued = issue_code(session, row.unit, principal.name, successor, _validity(form))
    return _code_page(request, principal, row, issued)


@installation_router.post("/installation/{hsa}/ersatt", response_class=HTMLResponse)
async def replace(request: Request, hsa: str) -> Response:
    """Replace a device: retire it, revoke its tokens and show a one-time code for its successor."""
    checked = await _device_form(request, hsa, f"installationerna på enheten {hsa}")
    if isinstance(checked, Response):
        return checked
    principal, row, form = checked
    old = form.get("ersatt", "")
    services = services_of(request)
    try:
        successor = _successor(form)
        with services.sessions.begin() as session:
            issued = replace_device(session, row.unit, old, principal.name, successor, _validity(form), accounts=services.broker_accounts)
    except ValueError as problem:
        return _installation_page(request, principal, row, status=400, error=str(problem))
    except UnknownDevice:
        return _installation_page(request, principal, row, status=400, error=f"Insamlaren ”{old[:64]}” finns inte på enheten.")
    except BrokerAccountError as exc:
        log.error("replacement of device %s of %s refused by the broker: %s", old[:64], row.unit, exc)
        return _installation_page(
            request,
            principal,
            row,
            status=503,
            error=(
                f"Insamlaren ”{old[:64]}” kunde inte spärras i MQTT-brokern, så inget har ändrats. Försök igen om en stund; "
                "kvarstår felet, be driften titta i serverns logg."
            ),
        )
    return _code_page(request, principal, row, issued, replaced=old)
