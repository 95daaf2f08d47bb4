"""Login, logout and scope over plain HTTP (FastAPI's TestClient): who may open which page."""

from __future__ import annotations

from urllib.parse import quote

import orjson

from vardkoll.server.auth import Role
from vardkoll.server.auth.dependencies import SESSION_COOKIE

from .world import ADMIN_TOKEN, GAVLEBORG, OTHER, PAST_DAY, UPPSALA, VC01, VC02, day_of_events, page_fields, token


def login(client, secret: str, next_page: str = "/"):
    return client.post("/logga-in", data={"token": secret, "nasta": next_page}, follow_redirects=False)


def test_a_page_without_login_leads_to_the_login_page(web):
    client, _ = web
    response = client.get(f"/enhet/{VC01}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/logga-in?nasta=")
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and "Klistra in din API-nyckel" in page.text and 'lang="sv"' in page.text


def test_login_sets_an_httponly_strict_cookie_and_goes_to_the_managers_unit(web):
    client, services = web
    response = login(client, token(services, Role.clinic_manager, unit=VC01))
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert f"{SESSION_COOKIE}=" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    start = client.get("/", follow_redirects=False)
    assert start.headers["location"] == f"/enhet/{VC01}"
    assert client.get(f"/enhet/{VC01}").status_code == 200


def test_the_cookie_is_secure_over_https(web):
    client, services = web
    client.base_url = client.base_url.copy_with(scheme="https")
    response = login(client, token(services, Role.clinic_manager, unit=VC01))
    assert "secure" in response.headers["set-cookie"].lower()


def test_an_unknown_token_is_refused_in_swedish(web):
    client, _ = web
    response = login(client, "fel-nyckel-" * 3)
    assert response.status_code == 401
    assert "Nyckeln är okänd eller återkallad" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_login_does_not_redirect_to_another_site(web):
    client, _ = web
    response = login(client, ADMIN_TOKEN, "//evil.example/")
    assert response.headers["location"] == "/"


def test_logout_ends_the_session(web):
    client, services = web
    login(client, token(services, Role.clinic_manager, unit=VC01))
    response = client.post("/logga-ut", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/logga-in"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"] or "max-age=0" in response.headers["set-cookie"].lower()
    assert SESSION_COOKIE not in client.cookies
    assert client.get(f"/enhet/{VC01}", follow_redirects=False).status_code == 303


def test_a_clinic_manager_cannot_open_another_unit(web):
    client, services = web
    login(client, token(services, Role.clinic_manager, unit=VC01))
    for page in (f"/enhet/{VC02}", f"/enhet/{VC02}/innehall", f"/region/{quote(GAVLEBORG)}", f"/installation/{OTHER}"):
        response = client.get(page)
        assert response.status_code == 403, page
        assert "Ingen behörighet" in response.text and f"Din inloggning gäller enheten {VC01}" in response.text
        assert "Vårdcentralen Östhammar" not in response.text


def test_an_analyst_sees_their_region_and_no_other(web):
    client, services = web
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    assert client.get("/", follow_redirects=False).headers["location"] == f"/region/{quote(UPPSALA)}"
    region = client.get(f"/region/{quote(UPPSALA)}")
    assert region.status_code == 200 and "Vårdcentralen Östhammar" in region.text and "Vårdcentralen Gävle" not in region.text
    assert client.get(f"/enhet/{VC02}").status_code == 200
    assert client.get(f"/enhet/{OTHER}").status_code == 403
    assert client.get(f"/region/{quote(GAVLEBORG)}").status_code == 403


def test_an_installer_sees_devices_but_not_figures(web):
    client, services = web
    login(client, token(services, Role.installer, region=UPPSALA))
    devices = client.get(f"/installation/{VC01}")
    assert devices.status_code == 200 and "pi-reception" in devices.text and "tyst" in devices.text
    assert client.get(f"/enhet/{VC01}").status_code == 403


def test_the_session_cookie_reads_the_api_but_cannot_change_anything(web):
    client, services = web
    login(client, token(services, Role.clinic_manager, unit=VC01))
    own = client.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": "2026-03-01", "to": "2026-03-02"})
    assert own.status_code == 200
    assert client.get(f"/api/v1/units/{VC02}/compliance", params={"metric": "telephone", "from": "2026-03-01", "to": "2026-03-02"}).status_code == 403
    client.cookies.set(SESSION_COOKIE, ADMIN_TOKEN)
    assert client.post("/api/v1/events", content=b"[]").status_code == 401


def test_page_numbers_equal_api_numbers(web):
    client, services = web
    posted = client.post("/api/v1/events", content=orjson.dumps(day_of_events(VC01, PAST_DAY)), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert posted.status_code == 200 and not posted.json()["rejected"], posted.text
    login(client, token(services, Role.clinic_manager, unit=VC01))
    html = client.get(f"/enhet/{VC01}", params={"dag": PAST_DAY.isoformat()}).text
    api = client.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": PAST_DAY.isoformat(), "to": PAST_DAY.isoformat()}).json()
    fields = page_fields(html, "telefon")
    assert fields["ratio"] == f"{api['numerator']} av {api['denominator']} samtal"
    assert fields["share"] == f"{round(api['share'] * 100, 1):.1f}\u00a0%".replace(".", ",")
    for name in ("answered", "callback_same_day", "callback_pending", "abandoned", "rejected"):
        assert fields[name] == str(api["details"][name]), name
    assessment = client.get(
        f"/api/v1/units/{VC01}/compliance", params={"metric": "assessment", "from": PAST_DAY.isoformat(), "to": PAST_DAY.isoformat()}
    ).json()
    cases = page_fields(html, "tredagars")
    assert cases["pending"] == str(assessment["details"]["pending"]) and cases["overdue_open"] == str(assessment["details"]["overdue_open"])
    assert "litet underlag" in html  # 9 assessed cases: fewer than 20
