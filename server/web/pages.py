"""What every dashboard page shares: the templates, the security headers, the signed-in check, the
scope check of a unit, and the Swedish error pages.

Scope is the API's: a clinic manager sees one unit, a region analyst one region, an installer
devices; a page outside one's scope answers 403 with a Swedish page, never with the data.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from vardkoll.protocol.field_rules import is_hsa_id
from vardkoll.server.metrics import METRICS

from ..auth import OutOfScope, Principal, Role, require_role, require_unit
from ..monitoring.version import version
from ..services import Services
from ..storage.registry_tables import UnitRow
from . import charts, formatting, fragments
from .session import end_session, signed_in
from .views import METRIC_NAMES, SHORT_NAMES

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_env.filters.update(formatting.FILTERS)
_env.globals.update(
    METRIC_NAMES=METRIC_NAMES,
    SHORT_NAMES=SHORT_NAMES,
    METRICS=METRICS,
    NO_DATA=formatting.NO_DATA,
    quote=quote,
    hourly_chart=charts.hourly_calls,
    trend_chart=charts.trend,
    sparkline=charts.sparkline,
    hour_label=charts.hour_label,
    SEGMENTS=charts.SEGMENTS,
    cached_table_row=fragments.table_row,
    cached_multiple=fragments.multiple,
    VERSION=version(),
)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ROLE_NAMES = {
    Role.admin: "administratör",
    Role.region_analyst: "regionanalytiker",
    Role.clinic_manager: "verksamhetschef",
    Role.installer: "installatör",
    Role.device: "insamlare",
}


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message


def render(request: Request, template: str, status: int = 200, principal: Principal | None = None, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, principal=principal, role_names=ROLE_NAMES, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def services_of(request: Request) -> Services:
    return request.app.state.services


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/logga-in?{urlencode({'nasta': target})}", status_code=303)
    end_session(response)
    return response


def forbidden(principal: Principal, what: str) -> PageError:
    if principal.unit:
        scope = f"Din inloggning gäller enheten {principal.unit}."
    elif principal.region:
        scope = f"Din inloggning gäller {principal.region}."
    else:
        scope = f"Din inloggning ({ROLE_NAMES[principal.role]}) ger inte tillgång till den här sidan."
    return PageError(403, "Ingen behörighet", f"Du har inte behörighet att se {what}. {scope}")


def error_page(request: Request, principal: Principal | None, error: PageError) -> HTMLResponse:
    return render(request, "fel.html", status=error.status, principal=principal, title=error.title, message=error.message)


def unit_row(services: Services, principal: Principal, hsa: str, roles: frozenset[Role], what: str) -> UnitRow:
    if not is_hsa_id(hsa):
        raise PageError(404, "Sidan finns inte", f"”{hsa[:60]}” är inget HSA-id. Ett HSA-id ser ut som SE2321000016-15SF.")
    with services.sessions() as session:
        row = session.get(UnitRow, hsa)
        if row is not None:
            session.expunge(row)
    try:
        require_role(principal, roles)
        require_unit(principal, hsa, row.region if row else None)
    except OutOfScope:
        raise forbidden(principal, what) from None
    if row is None:
        raise PageError(404, "Enheten finns inte", f"Enheten {hsa} finns inte i enhetsregistret.")
    return row


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PageError(400, "Felaktigt datum", f"”{value[:20]}” är inget datum. Skriv det som 2026-11-23.") from None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def page(request: Request, build: Any) -> Response:
    principal = signed_in(request)
    if principal is None:
        return login_redirect(request)
    try:
        return build(principal)
    except PageError as error:
        return error_page(request, principal, error)
