"""Larm: the page in real Chromium lists, filters and acknowledges, and a clinic manager sees only the own
unit's alerts; the API gives the same, scoped the same; rules and subscriptions through the API."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
import uvicorn

try:
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture skips (or fails on CI) with the reason
    expect = None

from support import free_port
from vardkoll.demo.broker import wait_for_port
from vardkoll.server.alerts.store import ASSESSMENT_AT_RISK, COLLECTOR_SILENT, AlertRaised, raise_alerts
from vardkoll.server.auth import Role
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings

from .conftest import dashboard_app
from .test_browser import signed_in_page
from .world import ADMIN_TOKEN, GAVLEBORG, OTHER, UPPSALA, VC01, VC02, register, token

NOW = datetime.now(timezone.utc)


def raise_some(services: Services) -> None:
    with services.sessions.begin() as session:
        raise_alerts(
            session,
            [
                AlertRaised(VC01, ASSESSMENT_AT_RISK, "case-vc01-a", {"contact_day": "2026-11-30", "deadline": "2026-12-03T22:59:59+00:00"}),
                AlertRaised(VC01, COLLECTOR_SILENT, "pi-reception", {"last_seen_at": None, "silent_after_s": 900}),
                AlertRaised(VC02, ASSESSMENT_AT_RISK, "case-vc02-b", {"contact_day": "2026-11-30", "deadline": "2026-12-03T22:59:59+00:00"}),
                AlertRaised(OTHER, ASSESSMENT_AT_RISK, "case-ga01-c", {"contact_day": "2026-11-30", "deadline": "2026-12-03T22:59:59+00:00"}),
            ],
            NOW - timedelta(minutes=5),
        )


@pytest.fixture
def page_server(tmp_path) -> Iterator[tuple[str, Services]]:
    """The API and the dashboard over HTTP on a free port (no broker, no jobs)."""
    settings = ServerSettings(database_url=f"sqlite:///{tmp_path / 'larm.db'}", admin_token=ADMIN_TOKEN, dev=False)
    services = build_services(settings, apply_migrations=True)
    register(services)
    raise_some(services)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(dashboard_app(settings, services, background=False), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, 30)
    yield f"http://127.0.0.1:{port}", services
    server.should_exit = True
    thread.join(15)
    services.engine.dispose()


def test_the_larm_page_lists_filters_and_acknowledges_the_own_units_alerts_only(chromium, page_server):
    base, services = page_server
    context, page = signed_in_page(chromium, base, token(services, Role.clinic_manager, unit=VC01))
    try:
        badge = page.locator("#larm-lank + [data-field=alerts-open]")
        expect(badge).to_have_text("2 öppna")  # on Klinikvy
        page.click("#larm-lank")
        rows = page.locator("#larm tbody tr")
        expect(rows).to_have_count(2)
        assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.unit)")) == [VC01, VC01]
        assert "case-vc02-b" not in page.content() and "case-ga01-c" not in page.content()
        assert "Ärende nära 3-dagarsgränsen" in page.content() and "Insamlingsenheten hörs inte" in page.content()

        page.select_option("select[name=typ]", ASSESSMENT_AT_RISK)
        page.click("#larm-filter button[type=submit]")
        expect(rows).to_have_count(1)
        row = page.locator("tr[data-kind=assessment_at_risk]")
        row.locator("button", has_text="Kvittera").click()
        expect(row.locator("[data-field=state]")).to_have_text("kvitterat")
        expect(row).to_contain_text("av webbtest clinic_manager")
        page.select_option("select[name=status]", "okvitterade")
        page.click("#larm-filter button[type=submit]")
        expect(page.locator("#inga-larm")).to_be_visible()

        page.goto(f"{base}/larm?status=alla")  # without a unit: all of the manager's units, which is one
        expect(rows).to_have_count(2)
        assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.unit)")) == [VC01, VC01]
        response = page.goto(f"{base}/larm?enhet={VC02}")
        assert response is not None and response.status == 403 and "Ingen behörighet" in page.content()
        page.goto(f"{base}/enhet/{VC01}")
        expect(badge).to_have_text("2 öppna, 1 ej kvitterade")
    finally:
        context.close()


def test_the_alerts_api_is_scoped_like_the_page(web):
    client, services = web
    raise_some(services)
    manager = {"Authorization": f"Bearer {token(services, Role.clinic_manager, unit=VC01)}"}
    analyst = {"Authorization": f"Bearer {token(services, Role.region_analyst, region=UPPSALA)}"}
    assert {a["unit"] for a in client.get("/api/v1/alerts", headers=manager).json()} == {VC01}
    assert {a["unit"] for a in client.get("/api/v1/alerts", headers=analyst).json()} == {VC01, VC02}
    assert client.get(f"/api/v1/alerts?unit={OTHER}", headers=analyst).status_code == 403
    assert client.get("/api/v1/alerts?kind=nonsense", headers=analyst).status_code == 422
    other = next(a for a in client.get("/api/v1/alerts", headers=analyst).json() if a["unit"] == VC02)
    assert client.post(f"/api/v1/alerts/{other['id']}/acknowledge", headers=manager).status_code == 403
    acknowledged = client.post(f"/api/v1/alerts/{other['id']}/acknowledge", headers=analyst).json()
    assert acknowledged["acknowledged_by"] == "webbtest region_analyst" and acknowledged["acknowledged_at"]
    assert [a["id"] for a in client.get("/api/v1/alerts?state=acknowledged", headers=analyst).json()] == [other["id"]]
    log = client.get("/api/v1/access-log", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    entries = log["entries"] if isinstance(log, dict) else log
    actions = [(e["who"], e["action"]) for e in entries]
    assert ("webbtest region_analyst", "read:alerts") in actions and ("webbtest region_analyst", "change:POST") in actions


def test_rules_and_subscriptions_through_the_api(web):
    client, services = web
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    manager = {"Authorization": f"Bearer {token(services, Role.clinic_manager, unit=VC01)}"}
    assert client.put(f"/api/v1/alert-rules/regions/{UPPSALA}", json={"at_risk_hours": 48, "digest_at": "06:30"}, headers=admin).status_code == 200
    assert client.put(f"/api/v1/alert-rules/units/{VC01}", json={"at_risk_hours": 12}, headers=admin).status_code == 200
    assert client.put(f"/api/v1/alert-rules/units/{VC01}", json={"at_risk_hours": 12}, headers=manager).status_code == 403
    assert client.put(f"/api/v1/alert-rules/units/{VC01}", json={"at_risk_hours": 99}, headers=admin).status_code == 422
    rules = client.get(f"/api/v1/alert-rules/units/{VC01}", headers=manager).json()
    assert rules["effective"]["at_risk_hours"] == 12 and rules["effective"]["digest_at"] == "06:30:00"
    assert rules["effective"]["telephone_check_times"] == ["10:00:00", "14:00:00"]

    own = {"name": "Chef VC01", "scope": "unit", "unit": VC01, "channel": "email", "address": "chef@vc01.test", "digest": True}
    assert client.post("/api/v1/alert-subscriptions", json=own, headers=manager).status_code == 201
    assert client.post("/api/v1/alert-subscriptions", json={**own, "unit": VC02}, headers=manager).status_code == 403
    assert client.post("/api/v1/alert-subscriptions", json={**own, "region": GAVLEBORG, "scope": "region", "unit": None}, headers=manager).status_code == 403
    bad = client.post("/api/v1/alert-subscriptions", json={**own, "address": "not an address"}, headers=manager)
    assert bad.status_code == 422 and "e-mail" in bad.text
    mine = client.get("/api/v1/alert-subscriptions", headers=manager).json()
    assert [s["address"] for s in mine] == ["chef@vc01.test"]
    assert client.delete(f"/api/v1/alert-subscriptions/{mine[0]['id']}", headers=manager).status_code == 204
    assert client.get("/api/v1/alert-subscriptions", headers=admin).json() == []
