"""Signing in through a real OpenID provider (the npm package oidc-provider, tests/support/idp/) in headless
Chromium: the clinic manager lands on the own unit's Klinikvy, gets 403 elsewhere, logs out; an expired and a
tampered ID token are refused by Authlib's checks against the provider's real keys."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from support import free_port, service_missing
from vardkoll.demo.broker import wait_for_port
from vardkoll.server.auth import Role
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.sign_in import IdentityProvider, add_mapping
from vardkoll.server.storage.access_tables import AccessRecord

from .conftest import dashboard_app
from .world import ADMIN_TOKEN, UPPSALA, VC01, VC02, register

IDP = Path(__file__).parent.parent / "support" / "idp"
ID_TOKEN_TTL_S = 2


class TokenAnswers(httpx.BaseTransport):
    """In front of the real provider: passes everything, or spoils the token endpoint's answer as told."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.mode = "pass"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/token") or self.mode == "pass":
            return response
        body = httpx.Response(response.status_code, headers=response.headers, stream=response.stream).read()
        if self.mode == "late":
            time.sleep(ID_TOKEN_TTL_S + 1.5)  # the ID token expires on its way
            return httpx.Response(response.status_code, content=body, headers={"content-type": "application/json"})
        import json

        token = json.loads(body)
        head, payload, signature = token["id_token"].split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        raw[10] ^= 0x01
        token["id_token"] = ".".join([head, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])
        return httpx.Response(response.status_code, json=token)


@pytest.fixture
def signed_in_world(tmp_path):
    node = shutil.which("node")
    if node is None:
        service_missing("node is not installed (apt-get install nodejs npm), so the sign-in test's OpenID provider cannot run")
    if not (IDP / "node_modules" / "oidc-provider").is_dir():
        service_missing(f"the test provider's packages are missing: run `npm ci --prefix {IDP}`")
    idp_port, app_port = free_port(), free_port()
    base = f"http://127.0.0.1:{app_port}"
    env = {
        "PATH": "/usr/bin:/bin",
        "IDP_PORT": str(idp_port),
        "IDP_CLIENT_ID": "vardkoll",
        "IDP_CLIENT_SECRET": "test-client-secret-0123456789",
        "IDP_REDIRECT_URI": f"{base}/logga-in/retur",
        "IDP_POST_LOGOUT_URI": f"{base}/logga-in?utloggad=1",
        "IDP_ID_TOKEN_TTL_S": str(ID_TOKEN_TTL_S),
    }
    idp = subprocess.Popen([node, "provider.mjs"], cwd=IDP, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(idp_port, 20)
        settings = ServerSettings(
            database_url=f"sqlite:///{tmp_path / 'signin.db'}",
            admin_token=ADMIN_TOKEN,
            oidc_issuer=f"http://127.0.0.1:{idp_port}",
            oidc_client_id="vardkoll",
            oidc_client_secret="test-client-secret-0123456789",
            oidc_redirect_base=base,
            oidc_scopes="openid profile groups",
            oidc_clock_skew_s=0,
        )
        services = build_services(settings, apply_migrations=True)
        answers = TokenAnswers()
        services.identity_provider = IdentityProvider(settings, transport=answers)
        register(services)
        with services.sessions.begin() as session:
            add_mapping(session, "groups", "vk-chef-vc01", Role.clinic_manager, None, VC01, "test")
            add_mapping(session, "groups", "vk-analys-uppsala", Role.region_analyst, UPPSALA, None, "test")
        server = uvicorn.Server(uvicorn.Config(dashboard_app(settings, services, background=False), host="127.0.0.1", port=app_port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_for_port(app_port, 30)
        yield base, services, answers
        server.should_exit = True
        thread.join(15)
        services.engine.dispose()
    finally:
        idp.terminate()
        idp.wait(10)


def sign_in(browser, base: str, user: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/logga-in")
    page.click("#regionens-inloggning")
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.click("button[type=submit]")  # the provider's consent page
    page.wait_for_load_state()
    return context, page


def records(services, action: str) -> list[AccessRecord]:
    with services.sessions() as session:
        return list(session.scalars(select(AccessRecord).where(AccessRecord.action == action).order_by(AccessRecord.id)))


def test_a_clinic_manager_signs_in_at_the_region_sees_the_own_unit_only_and_signs_out(chromium, signed_in_world):
    base, services, _ = signed_in_world
    context, page = sign_in(chromium, base, "chef-arsta")
    page.wait_for_url(f"{base}/enhet/{VC01}", timeout=10_000)
    assert "Klinikvy" in page.content() or VC01 in page.content()
    other = page.goto(f"{base}/enhet/{VC02}")
    assert other is not None and other.status == 403
    [signed] = records(services, "sign_in")
    assert (signed.who, signed.role, signed.unit) == ("chef-arsta", "clinic_manager", VC01)
    # The session cookie authorises no API write, and its value is no bearer token.
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "vardkoll_session")
    assert httpx.get(f"{base}/api/v1/units/{VC01}", headers={"Authorization": f"Bearer {cookie}"}).status_code == 401
    page.goto(f"{base}/")
    page.click("text=Logga ut")
    page.click("button[autofocus], button:has-text('Yes')")  # the provider asks before ending its session
    page.wait_for_url(f"{base}/logga-in?utloggad=1", timeout=10_000)
    assert page.goto(f"{base}/enhet/{VC01}").url.startswith(f"{base}/logga-in")
    assert records(services, "sign_out")[0].who == "chef-arsta"
    context.close()


def test_a_region_analyst_lands_on_the_region(chromium, signed_in_world):
    base, _, _ = signed_in_world
    context, page = sign_in(chromium, base, "analytiker-uppsala")
    page.wait_for_url(f"{base}/region/**", timeout=10_000)
    context.close()


@pytest.mark.parametrize("mode, reason", [("tamper", "bad_signature"), ("late", "expired_token")])
def test_a_tampered_or_expired_id_token_is_refused(chromium, signed_in_world, mode, reason):
    base, services, answers = signed_in_world
    answers.mode = mode
    context, page = sign_in(chromium, base, "chef-arsta")
    page.wait_for_selector("#fel", timeout=15_000)
    assert "kunde inte godkännas" in page.content()
    assert records(services, "sign_in") == []
    [refused] = records(services, "sign_in:refused")
    assert refused.detail == f"id token refused: {reason}"
    assert not any(c["name"] == "vardkoll_session" for c in context.cookies())
    context.close()
