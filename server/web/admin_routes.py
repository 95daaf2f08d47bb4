"""The admins' pages: Nycklar (API, device and sign-in tokens: expiry, last use, rotate with an overlap,
revoke) and Åtkomstlogg (the access log, filtered). They call the same code as the API (server/auth/tokens.py,
server/access_log/); their forms carry the session's CSRF token (csrf.py), and the access-log middleware
records each change."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from ..access_log import read_access_log
from ..api.deps import RowId
from ..api.tokens import lifetime
from ..auth import ADMINS, OutOfScope, Principal, RetiredToken, Role, UnknownToken, list_tokens, require_role, revoke_token, rotate_token
from .csrf import FIELD as CSRF_FIELD, csrf_token, read_form
from .pages import PageError, error_page, forbidden, login_redirect, page, parse_day, render, services_of, utc_now
from .session import signed_in

admin_router = APIRouter(include_in_schema=False)
OVERLAP_HOURS = (0, 24, 168)


def _admin(principal: Principal, what: str) -> None:
    try:
        require_role(principal, ADMINS)
    except OutOfScope:
        raise forbidden(principal, what) from None


def _tokens_page(request: Request, principal: Principal, status: int = 200, new_secret: str | None = None, error: str | None = None) -> HTMLResponse:
    with services_of(request).sessions() as session:
        tokens = list_tokens(session)
        for row in tokens:
            session.expunge(row)
    return render(
        request,
        "nycklar.html",
        status=status,
        principal=principal,
        tokens=[t for t in tokens if t.kind == "token"],
        sessions=[t for t in tokens if t.kind != "token"],
        now=utc_now(),
        csrf=csrf_token(request),
        csrf_field=CSRF_FIELD,
        overlaps=OVERLAP_HOURS,
        new_secret=new_secret,
        error=error,
    )


@admin_router.get("/nycklar", response_class=HTMLResponse)
def tokens_page(request: Request) -> Response:
    def build(principal: Principal) -> Response:
        _admin(principal, "nycklarna")
        return _tokens_page(request, principal)

    return page(request, build)


@admin_router.post("/nycklar/{token_id}/{action}", response_class=HTMLResponse)
async def token_action(request: Request, token_id: RowId, action: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return login_redirect(request)
    try:
        _admin(principal, "nycklarna")
    except PageError as error:
        return error_page(request, principal, error)
    form = await read_form(request)
    if form is None or action not in ("byt", "aterkalla"):
        return error_page(
            request,
            principal,
            PageError(403, "Formuläret kunde inte tas emot", "Formuläret har gått ut eller kom från en annan webbplats. Öppna sidan Nycklar igen."),
        )
    services = services_of(request)
    with services.sessions.begin() as session:
        if action == "aterkalla":
            if revoke_token(session, token_id) is None:
                return _tokens_page(request, principal, 404, error=f"Det finns ingen nyckel med nummer {token_id}.")
            return _tokens_page(request, principal)
        hours = int(form.get("overlapp", "24")) if form.get("overlapp", "24").isdigit() else 24
        try:
            old_role = next((Role(t.role) for t in list_tokens(session) if t.id == token_id), Role.admin)
            _new, secret, _old = rotate_token(session, token_id, timedelta(hours=min(hours, 720)), lifetime(services.settings, old_role))
        except UnknownToken:
            return _tokens_page(request, principal, 404, error=f"Det finns ingen nyckel med nummer {token_id}.")
        except RetiredToken:
            return _tokens_page(request, principal, 409, error=f"Nyckel {token_id} är återkallad, har gått ut eller är en inloggning och kan inte bytas.")
    return _tokens_page(request, principal, new_secret=secret)


ACTIONS = {"": "alla", "read": "läsningar av ärendedata", "change": "ändringar", "sign_in": "inloggningar", "sign_out": "utloggningar"}


@admin_router.get("/atkomstlogg", response_class=HTMLResponse)
def access_log_page(
    request: Request,
    fran: Annotated[str | None, Query()] = None,
    till: Annotated[str | None, Query()] = None,
    enhet: Annotated[str, Query()] = "",
    handling: Annotated[str, Query()] = "",
) -> Response:
    def build(principal: Principal) -> Response:
        _admin(principal, "åtkomstloggen")
        start, end = parse_day(fran), parse_day(till)
        since = datetime.combine(start, time(0), tzinfo=timezone.utc) if start else None
        until = datetime.combine(end + timedelta(days=1), time(0), tzinfo=timezone.utc) if end else None
        action = handling if handling in ACTIONS else ""
        with services_of(request).sessions() as session:
            rows = read_access_log(session, since, until, enhet.strip() or None, action or None, 500)
        filters = {"fran": fran or "", "till": till or "", "enhet": enhet, "handling": action}
        return render(request, "atkomstlogg.html", principal=principal, rows=rows, filters=filters, actions=ACTIONS)

    return page(request, build)
