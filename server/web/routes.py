"""The dashboard's pages: login, Klinikvy, Regionvy and Installationsvy, rendered on the server.

Scope is the API's: a clinic manager sees one unit, a region analyst one region, an installer
devices; a page outside one's scope answers 403 with a Swedish page, never with the data.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from vardkoll.protocol.events import DEVICE_ID_PATTERN, HSA_ID_PATTERN
from vardkoll.server.metrics import METRICS, Period

from ..api.figure_csv import figures_csv
from ..auth import DEVICE_MANAGERS, FIGURE_READERS, REGISTRY_READERS, OutOfScope, Principal, Role, require_region, require_role, require_unit, visible_units
from ..provisioning import BrokerAccountError, UnknownDevice, issue_code, replace_device
from ..services import Services
from ..storage.registry_tables import UnitRow
from . import charts, formatting
from .csrf import FIELD as CSRF_FIELD, csrf_token, read_form
from ..auth.dependencies import principal_for_token
from .qr import qr_svg
from .session import end_session, signed_in, start_session
from .trends import unit_trends
from .region_view import SORT_KEYS, Filters, region_table, region_view
from .views import METRIC_NAMES, SHORT_NAMES, clinic_view, installation_view, month_to_date

log = logging.getLogger("vardkoll.provisioning")

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_env.filters.update(formatting.FILTERS)
_env.globals.update(METRIC_NAMES=METRIC_NAMES, SHORT_NAMES=SHORT_NAMES, METRICS=METRICS, NO_DATA=formatting.NO_DATA, quote=quote,
                    hourly_chart=charts.hourly_calls, trend_chart=charts.trend, sparkline=charts.sparkline, hour_label=charts.hour_label,
                    SEGMENTS=charts.SEGMENTS)

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

web_router = APIRouter(include_in_schema=False)


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message


def render(request: Request, template: str, status: int = 200, principal: Principal | None = None, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, principal=principal, role_names=ROLE_NAMES, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _services(request: Request) -> Services:
    return request.app.state.services


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/logga-in?{urlencode({'nasta': target})}", status_code=303)
    end_session(response)
    return response


def _forbidden(principal: Principal, what: str) -> PageError:
    if principal.unit:
        scope = f"Din inloggning gäller enheten {principal.unit}."
    elif principal.region:
        scope = f"Din inloggning gäller {principal.region}."
    else:
        scope = f"Din inloggning ({ROLE_NAMES[principal.role]}) ger inte tillgång till den här sidan."
    return PageError(403, "Ingen behörighet", f"Du har inte behörighet att se {what}. {scope}")


def _error_page(request: Request, principal: Principal | None, error: PageError) -> HTMLResponse:
    return render(request, "fel.html", status=error.status, principal=principal, title=error.title, message=error.message)


def _unit_row(services: Services, principal: Principal, hsa: str, roles: frozenset[Role], what: str) -> UnitRow:
    if not re.search(HSA_ID_PATTERN, hsa):
        raise PageError(404, "Sidan finns inte", f"”{hsa[:60]}” är inget HSA-id. Ett HSA-id ser ut som SE2321000016-15SF.")
    with services.sessions() as session:
        row = session.get(UnitRow, hsa)
        if row is not None:
            session.expunge(row)
    try:
        require_role(principal, roles)
        require_unit(principal, hsa, row.region if row else None)
    except OutOfScope:
        raise _forbidden(principal, what) from None
    if row is None:
        raise PageError(404, "Enheten finns inte", f"Enheten {hsa} finns inte i enhetsregistret.")
    return row


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PageError(400, "Felaktigt datum", f"”{value[:20]}” är inget datum. Skriv det som 2026-11-23.") from None


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- login -----------------------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


@web_router.get("/logga-in", response_class=HTMLResponse)
def login_page(request: Request, nasta: str | None = None) -> HTMLResponse:
    return render(request, "logga_in.html", principal=None, next=_safe_next(nasta), error=None)


@web_router.post("/logga-in")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("nasta") or ["/"])[0])
    principal = principal_for_token(request, token) if token else None
    if principal is None or principal.role is Role.device:
        message = "Ange en API-nyckel." if not token else "Nyckeln är okänd eller återkallad. Kontrollera att du klistrat in hela nyckeln."
        if principal is not None:
            message = "En insamlares nyckel kan inte användas för att logga in."
        return render(request, "logga_in.html", status=401, principal=None, next=target, error=message)
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, token)
    return response


@web_router.api_route("/logga-ut", methods=["GET", "POST"])
def logout() -> Response:
    response = RedirectResponse("/logga-in", status_code=303)
    end_session(response)
    return response


# -- pages -----------------------------------------------------------------------------------------


@web_router.get("/", response_class=HTMLResponse)
def start(request: Request) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _login_redirect(request)
    if principal.role is Role.clinic_manager and principal.unit:
        return RedirectResponse(f"/enhet/{principal.unit}", status_code=303)
    if principal.role is Role.region_analyst and principal.region:
        return RedirectResponse(f"/region/{quote(principal.region)}", status_code=303)
    services = _services(request)
    with services.sessions() as session:
        registry = list(session.execute(select(UnitRow.unit, UnitRow.name, UnitRow.region)).all())
    visible = set(visible_units(principal, [(u, r) for u, _, r in registry])) if principal.role is not Role.device else set()
    regions: dict[str, list[tuple[str, str]]] = {}
    for unit, name, region in sorted(registry, key=lambda r: (r[2], r[1])):
        if unit in visible:
            regions.setdefault(region, []).append((unit, name))
    return render(request, "start.html", principal=principal, regions=regions, reads_figures=principal.role in FIGURE_READERS)


def _page(request: Request, build: Any) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _login_redirect(request)
    try:
        return build(principal)
    except PageError as error:
        return _error_page(request, principal, error)


def _clinic_context(request: Request, principal: Principal, hsa: str, dag: str | None) -> dict[str, Any]:
    services = _services(request)
    row = _unit_row(services, principal, hsa, FIGURE_READERS, f"enheten {hsa}")
    with services.sessions() as session:
        view = clinic_view(services, session, row, _day(dag), _now())
    month = month_to_date(view.day)
    live = {"unit": hsa, "from": view.day.isoformat(), "to": view.day.isoformat(), "metric": ["telephone", "assessment"]}
    live_month = {"unit": hsa, "from": month.start.isoformat(), "to": month.end.isoformat()}
    fragment = f"/enhet/{hsa}/innehall" + (f"?{urlencode({'dag': dag})}" if dag else "")
    # The trends are in the live part too: only the week and the month that reach the day shown are
    # recomputed after an event; the settled periods come from the figure cache or the stored figures.
    trends = unit_trends(services.figures, hsa, view.day)
    return {
        "view": view, "month": month, "trends": trends,
        "live_urls": [f"/api/v1/live?{urlencode(live, doseq=True)}", f"/api/v1/live?{urlencode(live_month)}"],
        "fragment_url": fragment,
    }


@web_router.get("/enhet/{hsa}", response_class=HTMLResponse)
def clinic(request: Request, hsa: str, dag: Annotated[str | None, Query()] = None) -> Response:
    def build(principal: Principal) -> Response:
        return render(request, "klinik.html", principal=principal, **_clinic_context(request, principal, hsa, dag))

    return _page(request, build)


@web_router.get("/enhet/{hsa}/innehall", response_class=HTMLResponse)
def clinic_fragment(request: Request, hsa: str, dag: Annotated[str | None, Query()] = None) -> Response:
    """The changing part of Klinikvy, fetched by live.js when the live stream says the unit changed."""
    return _page(request, lambda p: render(request, "klinik_innehall.html", principal=p, **_clinic_context(request, p, hsa, dag)))


@dataclass(frozen=True)
class RegionQuery:
    """Regionvy's query parameters (Swedish names: they show in the address bar), checked."""

    period: Period
    sort: str
    descending: bool
    filters: Filters

    def params(self) -> dict[str, str]:
        """The period and the filters as query parameters (sorting is added where it matters)."""
        base = {"fran": self.period.start.isoformat(), "till": self.period.end.isoformat(), "matt": self.filters.metric}
        if self.filters.only_missing:
            base["under"] = "1"
        if self.filters.search:
            base["sok"] = self.filters.search
        return base


@dataclass
class RegionParams:
    """The query as it came; `checked()` inside `_page`, so a malformed date gets the Swedish 400 page."""

    fran: Annotated[str | None, Query()] = None
    till: Annotated[str | None, Query()] = None
    sortera: Annotated[str, Query()] = "namn"
    ordning: Annotated[str, Query()] = "stigande"
    matt: Annotated[str, Query()] = "telephone"
    under: Annotated[str | None, Query()] = None
    sok: Annotated[str, Query()] = ""

    def checked(self) -> RegionQuery:
        today = _now().astimezone(ZoneInfo("Europe/Stockholm")).date()
        start_day, end_day = _day(self.fran), _day(self.till)
        period = month_to_date(end_day or today)
        period = Period(start_day or period.start, end_day or period.end)
        if period.end < period.start:
            raise PageError(400, "Felaktig period", "Periodens slutdatum ligger före startdatumet.")
        filters = Filters(self.matt if self.matt in METRICS else "telephone", self.under == "1", self.sok.strip()[:100])
        return RegionQuery(period, self.sortera if self.sortera in SORT_KEYS else "namn", self.ordning == "fallande", filters)


RegionParamsDep = Annotated[RegionParams, Depends()]


def _region_units(request: Request, principal: Principal, namn: str) -> list[UnitRow]:
    """The region's units the principal may see; a Swedish 403 outside their scope."""
    services = _services(request)
    try:
        require_role(principal, FIGURE_READERS)
        own = services.units.row(principal.unit) if principal.unit else None
        require_region(principal, namn, own.region if own else None)
    except OutOfScope:
        raise _forbidden(principal, namn) from None
    with services.sessions() as session:
        rows = list(session.scalars(select(UnitRow).where(UnitRow.region == namn)))
        for row in rows:
            session.expunge(row)
    visible = set(visible_units(principal, [(r.unit, r.region) for r in rows]))
    return [r for r in rows if r.unit in visible]


@web_router.get("/region/{namn}", response_class=HTMLResponse)
def region(request: Request, namn: str, params: RegionParamsDep) -> Response:
    def build(principal: Principal) -> Response:
        rows = _region_units(request, principal, namn)
        q = params.checked()
        today = _now().astimezone(ZoneInfo("Europe/Stockholm")).date()
        view = region_view(_services(request), rows, namn, q.period, q.sort, q.descending, q.filters, today)
        base = q.params()
        # The export keeps the table's filters and order: it holds exactly the rows shown.
        table = {**base, "sortera": q.sort, "ordning": "fallande" if q.descending else "stigande"}
        csv = {m: f"/region/{quote(namn)}/csv/{m}?{urlencode(table)}" for m in METRICS}
        return render(request, "region.html", principal=principal, view=view, base=base, csv=csv, urlencode=urlencode)

    return _page(request, build)


@web_router.get("/region/{namn}/csv/{metric}")
def region_csv(request: Request, namn: str, metric: str, params: RegionParamsDep) -> Response:
    """Regionvy's table as CSV for one metric: the rows the page shows (period, filters, order), each
    the API's figure in the API's CSV columns (`GET /api/v1/compliance?…&format=csv`)."""
    def build(principal: Principal) -> Response:
        if metric not in METRICS:
            raise PageError(404, "Sidan finns inte", f"”{metric[:40]}” är inget mått. Välj ett av: {', '.join(METRICS)}.")
        rows = _region_units(request, principal, namn)
        q = params.checked()
        table = [r for r in region_table(_services(request), rows, q.period, q.sort, q.descending) if q.filters.keeps(r)]
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", namn) + ("-urval" if q.filters.active else "")
        filename = f"vardkoll-{label}-{metric}-{q.period.start}-{q.period.end}.csv"
        return Response(figures_csv(r.figures[metric] for r in table), media_type="text/csv; charset=utf-8",
                        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})

    return _page(request, build)


def _installation_page(request: Request, principal: Principal, row: UnitRow, status: int = 200, error: str | None = None) -> HTMLResponse:
    with _services(request).sessions() as session:
        devices = installation_view(session, row.unit)
    return render(request, "installation.html", status=status, principal=principal, unit=row, devices=devices, now=_now(),
                  can_manage=principal.role in DEVICE_MANAGERS, csrf=csrf_token(request), csrf_field=CSRF_FIELD,
                  validities=CODE_VALIDITY_HOURS, error=error, broker_accounts=_services(request).broker_accounts is not None)


@web_router.get("/installation/{hsa}", response_class=HTMLResponse)
def installation(request: Request, hsa: str) -> Response:
    def build(principal: Principal) -> Response:
        row = _unit_row(_services(request), principal, hsa, REGISTRY_READERS, f"installationerna på enheten {hsa}")
        return _installation_page(request, principal, row)

    return _page(request, build)


CODE_VALIDITY_HOURS = (1, 4, 24)
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)


async def _device_form(request: Request, hsa: str, what: str) -> tuple[Principal, UnitRow, dict[str, str]] | Response:
    """The signed-in device manager, the unit and the checked form of a POST from Installationsvy."""
    principal = signed_in(request)
    if principal is None:
        return _login_redirect(request)
    try:
        row = _unit_row(_services(request), principal, hsa, DEVICE_MANAGERS, what)
    except PageError as error:
        return _error_page(request, principal, error)
    form = await read_form(request)
    if form is None:
        return _error_page(request, principal, PageError(
            403, "Formuläret kunde inte tas emot", "Formuläret har gått ut eller kom från en annan webbplats. Öppna sidan Installationer igen och försök på nytt."))
    return principal, row, form


def _validity(form: dict[str, str]) -> timedelta:
    hours = form.get("giltighet", "24")
    return timedelta(hours=int(hours) if hours.isdigit() and int(hours) in CODE_VALIDITY_HOURS else 24)


def _successor(form: dict[str, str]) -> str | None:
    """The device id the code is pinned to; None when left empty. Raises ValueError when malformed."""
    device = form.get("insamlare", "").strip()
    if device and not _DEVICE_ID.search(device):
        raise ValueError(f"”{device[:64]}” kan inte vara ett insamlar-id: använd 1–64 tecken av A–Z, a–z, 0–9 och . _ -")
    return device or None


def _code_page(request: Request, principal: Principal, row: UnitRow, issued: Any, replaced: str | None = None) -> HTMLResponse:
    server = str(request.base_url).rstrip("/")
    command = f"vardkoll collector enroll --server {server} --code {issued.code}" + (f" --device {issued.device}" if issued.device else "")
    return render(request, "engangskod.html", principal=principal, unit=row, issued=issued, replaced=replaced, server=server, command=command,
                  qr=qr_svg(issued.code, f"QR-kod med engångskoden {issued.code}"))


@web_router.post("/installation/{hsa}/engangskod", response_class=HTMLResponse)
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
    with _services(request).sessions.begin() as session:
        issued = issue_code(session, row.unit, principal.name, successor, _validity(form))
    return _code_page(request, principal, row, issued)


@web_router.post("/installation/{hsa}/ersatt", response_class=HTMLResponse)
async def replace(request: Request, hsa: str) -> Response:
    """Replace a device: retire it, revoke its tokens and show a one-time code for its successor."""
    checked = await _device_form(request, hsa, f"installationerna på enheten {hsa}")
    if isinstance(checked, Response):
        return checked
    principal, row, form = checked
    old = form.get("ersatt", "")
    services = _services(request)
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
        return _installation_page(request, principal, row, status=503, error=(
            f"Insamlaren ”{old[:64]}” kunde inte spärras i MQTT-brokern, så inget har ändrats. Försök igen om en stund; "
            "kvarstår felet, be driften titta i serverns logg."))
    return _code_page(request, principal, row, issued, replaced=old)


@web_router.get("/static/{name}")
def static(name: str) -> Response:
    """The dashboard's own CSS and JavaScript: no CDN, clinics may have no route to the internet."""
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response("Filen finns inte.", status_code=404, media_type="text/plain; charset=utf-8")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
