"""The dashboard's pages: Klinikvy and Regionvy, rendered on the server (signing in is in sign_in_routes.py,
Installationsvy in installation_routes.py, the admins' pages in admin_routes.py, what all pages share in pages.py)."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from vardkoll.server.metrics import METRICS, Period

from ..alerts.store import open_counts
from ..figures.csv_rows import figures_csv
from ..auth import FIGURE_READERS, OutOfScope, Principal, Role, require_region, require_role, visible_units
from ..access_log.log import record_principal
from ..storage.registry_tables import UnitRow
from .alerts_routes import alerts_router
from .help_routes import help_router
from .installation_routes import installation_router
from .pages import SECURITY_HEADERS, STATIC_DIR, PageError, forbidden, login_redirect, page, parse_day, render, services_of, unit_row, utc_now
from ..figures.region import region_figure
from ..registry import UnitEntry, benchmarks_on
from .region_view import SORT_KEYS, Filters, downloads, region_table, region_view, report_month
from .session import signed_in
from .sign_in_routes import sign_in_router
from .admin_routes import admin_router
from .trends import MONTH_NAMES, unit_trends
from .views import clinic_view, month_to_date

web_router = APIRouter(include_in_schema=False)


# -- pages -----------------------------------------------------------------------------------------


@web_router.get("/", response_class=HTMLResponse)
def start(request: Request) -> Response:
    principal = signed_in(request)
    if principal is None:
        return login_redirect(request)
    if principal.role is Role.clinic_manager and principal.unit:
        return RedirectResponse(f"/enhet/{principal.unit}", status_code=303)
    if principal.role is Role.region_analyst and principal.region:
        return RedirectResponse(f"/region/{quote(principal.region)}", status_code=303)
    services = services_of(request)
    with services.sessions() as session:
        registry = list(session.execute(select(UnitRow.unit, UnitRow.name, UnitRow.region)).all())
    visible = set(visible_units(principal, [(u, r) for u, _, r in registry])) if principal.role is not Role.device else set()
    regions: dict[str, list[tuple[str, str]]] = {}
    for unit, name, region in sorted(registry, key=lambda r: (r[2], r[1])):
        if unit in visible:
            regions.setdefault(region, []).append((unit, name))
    return render(request, "start.html", principal=principal, regions=regions, reads_figures=principal.role in FIGURE_READERS)


def _clinic_context(request: Request, principal: Principal, hsa: str, dag: str | None) -> dict[str, Any]:
    services = services_of(request)
    row = unit_row(services, principal, hsa, FIGURE_READERS, f"enheten {hsa}")
    with services.sessions() as session:
        view = clinic_view(services, session, row, parse_day(dag), utc_now())
    month = month_to_date(view.day)
    live = {"unit": hsa, "from": view.day.isoformat(), "to": view.day.isoformat(), "metric": ["telephone", "assessment"]}
    live_month = {"unit": hsa, "from": month.start.isoformat(), "to": month.end.isoformat()}
    fragment = f"/enhet/{hsa}/innehall" + (f"?{urlencode({'dag': dag})}" if dag else "")
    # The trends are in the live part too: only the week and the month that reach the day shown are
    # recomputed after an event; the settled periods come from the figure cache or the stored figures.
    trends = unit_trends(services.figures, hsa, view.day)
    with services.sessions() as session:
        alerts_open = open_counts(session, hsa)
    return {
        "alerts_open": alerts_open,
        "view": view,
        "month": month,
        "trends": trends,
        "live_urls": [f"/api/v1/live?{urlencode(live, doseq=True)}", f"/api/v1/live?{urlencode(live_month)}"],
        "fragment_url": fragment,
    }


@web_router.get("/enhet/{hsa}", response_class=HTMLResponse)
def clinic(request: Request, hsa: str, dag: Annotated[str | None, Query()] = None) -> Response:
    def build(principal: Principal) -> Response:
        context = _clinic_context(request, principal, hsa, dag)
        # Klinikvy lists the unit's cases at risk by pseudonym: a read of case-level data.
        record_principal(services_of(request).sessions, principal, request, "read:at_risk", unit=hsa, detail=f"Klinikvy {context['view'].day}")
        view = context["view"]
        month = report_month(view.day, utc_now().astimezone(ZoneInfo(view.tz)).date())
        profile = {"href": f"/api/v1/units/{quote(hsa)}/profile.pdf?month={month:%Y-%m}", "month": f"{MONTH_NAMES[month.month - 1]} {month.year}"}
        return render(request, "klinik.html", principal=principal, profile=profile, **context)

    return page(request, build)


@web_router.get("/enhet/{hsa}/innehall", response_class=HTMLResponse)
def clinic_fragment(request: Request, hsa: str, dag: Annotated[str | None, Query()] = None) -> Response:
    """The changing part of Klinikvy, fetched by live.js when the live stream says the unit changed."""
    return page(request, lambda p: render(request, "klinik_innehall.html", principal=p, **_clinic_context(request, p, hsa, dag)))


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
        today = utc_now().astimezone(ZoneInfo("Europe/Stockholm")).date()
        start_day, end_day = parse_day(self.fran), parse_day(self.till)
        period = month_to_date(end_day or today)
        period = Period(start_day or period.start, end_day or period.end)
        if period.end < period.start:
            raise PageError(400, "Felaktig period", "Periodens slutdatum ligger före startdatumet.")
        filters = Filters(self.matt if self.matt in METRICS else "telephone", self.under == "1", self.sok.strip()[:100])
        return RegionQuery(period, self.sortera if self.sortera in SORT_KEYS else "namn", self.ordning == "fallande", filters)


RegionParamsDep = Annotated[RegionParams, Depends()]


def _region_units(request: Request, principal: Principal, namn: str) -> list[UnitEntry]:
    """The region's units the principal may see; a Swedish 403 outside their scope."""
    services = services_of(request)
    try:
        require_role(principal, FIGURE_READERS)
        own = services.units.row(principal.unit) if principal.unit else None
        require_region(principal, namn, own.region if own else None)
    except OutOfScope:
        raise forbidden(principal, namn) from None
    # From the unit directory, as the API's region query: no round trip, and the same units in the same
    # order, so the page's table and `GET /api/v1/compliance?region=` share their whole sets.
    rows = services.units.rows_of_region(namn)
    visible = set(visible_units(principal, [(r.unit, r.region) for r in rows]))
    return [r for r in rows if r.unit in visible]


@web_router.get("/region/{namn}", response_class=HTMLResponse)
def region(request: Request, namn: str, params: RegionParamsDep) -> Response:
    def build(principal: Principal) -> Response:
        rows = _region_units(request, principal, namn)
        q = params.checked()
        today = utc_now().astimezone(ZoneInfo("Europe/Stockholm")).date()
        view = region_view(services_of(request), rows, namn, q.period, q.sort, q.descending, q.filters, today)
        base = q.params()
        # The export keeps the table's filters and order: it holds exactly the rows shown.
        table = {**base, "sortera": q.sort, "ordning": "fallande" if q.descending else "stigande"}
        csv = {m: f"/region/{quote(namn)}/csv/{m}?{urlencode(table)}" for m in METRICS}
        whole_region = principal.role is not Role.clinic_manager  # a clinic manager sees its own unit, not the region's sums
        files = downloads(namn, q.period, today, rows, internal_allowed=whole_region)
        region_figures = None
        if whole_region and rows:
            # The API's region figure (GET /api/v1/regions/{region}/compliance) for each metric and the period,
            # summed from the table's figures (the same units in the same order).
            with services_of(request).reads() as session:
                benchmarks = benchmarks_on(session, namn, q.period.end)
                region_figures = {
                    m: region_figure(services_of(request).figures, session, namn, rows, m, q.period, per_unit=view.by_metric[m], benchmarks=benchmarks)
                    for m in METRICS
                }
        return render(
            request, "region.html", principal=principal, view=view, base=base, csv=csv, urlencode=urlencode, files=files, region_figures=region_figures
        )

    return page(request, build)


@web_router.get("/region/{namn}/csv/{metric}")
def region_csv(request: Request, namn: str, metric: str, params: RegionParamsDep) -> Response:
    """Regionvy's table as CSV for one metric: the rows the page shows (period, filters, order), each
    the API's figure in the API's CSV columns (`GET /api/v1/compliance?…&format=csv`)."""

    def build(principal: Principal) -> Response:
        if metric not in METRICS:
            raise PageError(404, "Sidan finns inte", f"”{metric[:40]}” är inget mått. Välj ett av: {', '.join(METRICS)}.")
        rows = _region_units(request, principal, namn)
        q = params.checked()
        table = [r for r in region_table(services_of(request), rows, q.period, q.sort, q.descending) if q.filters.keeps(r)]
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", namn) + ("-urval" if q.filters.active else "")
        filename = f"vardkoll-{label}-{metric}-{q.period.start}-{q.period.end}.csv"
        return Response(
            figures_csv(r.figures[metric] for r in table),
            media_type="text/csv; charset=utf-8",
            headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return page(request, build)


@web_router.get("/static/{name}")
def static(name: str) -> Response:
    """The dashboard's own CSS and JavaScript: no CDN, clinics may have no route to the internet."""
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response("Filen finns inte.", status_code=404, media_type="text/plain; charset=utf-8")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


web_router.include_router(sign_in_router)
web_router.include_router(admin_router)
web_router.include_router(installation_router)
web_router.include_router(alerts_router)
web_router.include_router(help_router)
