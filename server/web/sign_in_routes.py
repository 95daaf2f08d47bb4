"""Signing in and out of the pages: through the region's identity provider (OpenID Connect, server/sign_in/),
or by pasting an API token (admins, and everyone in dev mode or where no provider is set).

Every sign-in, refused sign-in and sign-out goes into the access log. The session cookie stays HttpOnly and
SameSite=Strict; the API never lets it authorise a write (server/auth/dependencies.py). Because the provider
sends the browser back from another site, the callback answers with a page that moves on by itself: a
redirect would carry on that cross-site navigation, and the browser would then withhold the Strict cookie.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ..access_log import record_access
from ..access_log.log import client_of
from ..auth import Principal, Role, revoke_token
from ..auth.dependencies import principal_for_token
from ..sign_in import (
    ATTEMPT_COOKIE,
    ATTEMPT_LIFETIME,
    IdentityProvider,
    NoRole,
    SignInRefused,
    begin_attempt,
    finish_attempt,
    grant_for,
    list_mappings,
    start_sign_in_session,
    who_signed_in,
)
from .csrf import same_origin
from .pages import render, services_of, utc_now
from .session import end_session, is_https, signed_in, start_session

sign_in_router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


def _provider(request: Request) -> IdentityProvider | None:
    return services_of(request).identity_provider


def _record(request: Request, session: Session, who: str, role: str, action: str, **fields: Any) -> None:
    record_access(session, who, role, action, client=client_of(request), **fields)


def _login_page(request: Request, status: int = 200, next_path: str = "/", error: str | None = None, notice: str | None = None) -> HTMLResponse:
    settings = services_of(request).settings
    return render(
        request,
        "logga_in.html",
        status=status,
        principal=None,
        next=next_path,
        error=error,
        notice=notice,
        provider=_provider(request) is not None,
        tokens_for_everyone=settings.dev or _provider(request) is None,
    )


@sign_in_router.get("/logga-in", response_class=HTMLResponse)
def login_page(request: Request, nasta: str | None = None, utloggad: str | None = None) -> HTMLResponse:
    return _login_page(request, next_path=safe_next(nasta), notice="Du är utloggad." if utloggad else None)


@sign_in_router.post("/logga-in")
async def login_with_token(request: Request) -> Response:
    if not same_origin(request):
        # Another site's form must not sign a browser in (login CSRF: the victim would then work, and
        # enter data, under the attacker's token). SameSite keeps cookies off such requests, not this.
        return _login_page(request, 403, error="Inloggningen kom från en annan webbplats och avvisades. Öppna inloggningssidan här och försök igen.")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("nasta") or ["/"])[0])
    principal = principal_for_token(request, token) if token else None
    message = None
    if principal is None:
        message = "Ange en API-nyckel." if not token else "Nyckeln är okänd eller återkallad. Kontrollera att du klistrat in hela nyckeln."
    elif principal.role is Role.device or principal.signed_in:
        message = "En insamlares nyckel kan inte användas för att logga in." if principal.role is Role.device else "Det här är ingen API-nyckel."
    elif principal.role is not Role.admin and _provider(request) is not None and not services_of(request).settings.dev:
        message = "API-nycklar tas här bara emot från administratörer. Logga in med regionens inloggning."
    if message is not None or principal is None:
        return _login_page(request, 401, target, error=message)
    with services_of(request).sessions.begin() as session:
        _record(
            request,
            session,
            principal.name,
            principal.role.value,
            "sign_in",
            token_id=principal.token_id,
            unit=principal.unit,
            region=principal.region,
            detail="API token pasted",
        )
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, token)
    return response


@sign_in_router.get("/logga-in/oidc")
def sign_in_start(request: Request, nasta: str | None = None) -> Response:
    """Off to the region's identity provider, with a new attempt kept for its answer."""
    provider = _provider(request)
    if provider is None:
        return _login_page(request, 404, error="Inloggning via regionen är inte inställd på den här servern.")
    try:
        authorization = provider.authorization()
    except SignInRefused:
        return _login_page(request, 502, safe_next(nasta), error="Regionens inloggning svarar inte just nu. Försök igen om en stund.")
    with services_of(request).sessions.begin() as session:
        key = begin_attempt(session, authorization, safe_next(nasta), utc_now())
    response = RedirectResponse(authorization.url, status_code=303)
    # Lax, not Strict: the provider's answer is a navigation from its own site, and must bring this cookie.
    response.set_cookie(
        ATTEMPT_COOKIE,
        key,
        max_age=int(ATTEMPT_LIFETIME.total_seconds()),
        path="/logga-in",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return response


REFUSED = "Inloggningen kunde inte godkännas. Försök igen; händer det igen, kontakta vardkolls administratör och ange tiden."
NO_ROLE = "Du är inloggad hos regionen, men ditt konto har ingen roll i vardkoll. Be vardkolls administratör koppla din grupp till en roll."


@sign_in_router.get("/logga-in/retur")
def sign_in_answer(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """The provider's answer: the attempt taken out, the code exchanged, the ID token checked (Authlib), the role
    found from its claims; then the session."""
    provider = _provider(request)
    services = services_of(request)
    if provider is None:
        return _login_page(request, 404, error="Inloggning via regionen är inte inställd på den här servern.")
    now = utc_now()
    who, next_path = "unknown", "/"
    try:
        with services.sessions.begin() as session:
            attempt = finish_attempt(session, request.cookies.get(ATTEMPT_COOKIE), state, now)
        next_path = attempt.next_path
        if error or not code:
            raise SignInRefused(f"provider answered {error[:60] or 'without a code'}")
        claims = provider.claims(code, attempt.code_verifier, attempt.nonce)
        who = who_signed_in(claims)
        with services.sessions() as session:
            grant = grant_for(claims, list_mappings(session))
    except (SignInRefused, NoRole) as refusal:
        reason = refusal.reason if isinstance(refusal, SignInRefused) else str(refusal)
        with services.sessions.begin() as session:
            _record(request, session, who, "", "sign_in:refused", detail=reason)
        response = _login_page(request, 403, next_path, error=NO_ROLE if isinstance(refusal, NoRole) else REFUSED)
        response.delete_cookie(ATTEMPT_COOKIE, path="/logga-in")
        return response
    lifetime = timedelta(hours=services.settings.oidc_session_hours)
    with services.sessions.begin() as session:
        row, secret = start_sign_in_session(session, who, grant, lifetime, now)
        host = urlsplit(provider.issuer).hostname or ""
        _record(request, session, who, grant.role.value, "sign_in", token_id=row.id, unit=grant.unit, region=grant.region, detail=f"identity provider {host}")
    response = render(request, "inloggad.html", principal=None, target=next_path)
    response.delete_cookie(ATTEMPT_COOKIE, path="/logga-in")
    start_session(request, response, secret, int(lifetime.total_seconds()))
    return response


@sign_in_router.api_route("/logga-ut", methods=["GET", "POST"])
def logout(request: Request) -> Response:
    """Ends the session here (a sign-in session's token is revoked, so no copy of the cookie works on), then at
    the provider when it has an end_session_endpoint."""
    principal: Principal | None = signed_in(request)
    provider = _provider(request)
    leave_to = None
    if principal is not None:
        with services_of(request).sessions.begin() as session:
            if principal.signed_in and principal.token_id is not None:
                revoke_token(session, principal.token_id)
            _record(
                request, session, principal.name, principal.role.value, "sign_out", token_id=principal.token_id, unit=principal.unit, region=principal.region
            )
        if principal.signed_in and provider is not None:
            leave_to = provider.logout_url()
    if leave_to is None:
        response: Response = RedirectResponse("/logga-in", status_code=303)
    else:
        # A page, not a redirect: the form that posted here may only lead to this site (CSP form-action).
        response = render(request, "utloggad.html", principal=None, provider_logout=leave_to)
    end_session(response)
    return response
