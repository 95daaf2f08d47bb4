"""Control characters, SQL parameters in errors, and the login's origin (issue 12, item 8).

A NUL in a text parameter gave 500 on PostgreSQL (units, tokens, config, pages) and the log then held
the statement's parameters (a token's hash). `POST /logga-in` set the session cookie for a cross-site
`Origin`. Both backends, through the app.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .api_world import ADMIN_TOKEN, UPPSALA, VC01

NUL = "\x00"


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("get", "/api/v1/units/SE2321000016-VC01%00", {}),
        ("get", "/api/v1/units", {"params": {"region": f"Region{NUL}Uppsala"}}),
        ("post", "/api/v1/units", {"json": {"unit": "SE2321000016-VC09", "name": f"Vård{NUL}central", "region": UPPSALA}}),
        ("post", "/api/v1/tokens", {"json": {"name": f"wall{NUL}screen", "role": "region_analyst", "region": UPPSALA}}),
        ("get", "/api/v1/compliance", {"params": {"metric": "telephone", "from": "2026-03-01", "to": "2026-03-31", "region": f"R{NUL}"}}),
        ("get", "/api/v1/units/SE2321000016-VC01/events", {"params": {"from": "2026-03-01", "to": f"2026-03-31{NUL}"}}),
        ("put", "/api/v1/units/SE2321000016-VC01/devices/pi-1/config", {"json": {"connectors": {f"x{NUL}": {}}}}),
        ("get", "/region/Region%20Uppsala%00", {}),
        ("get", "/enhet/SE2321000016-VC01", {"params": {"datum": f"2026-03-02{NUL}"}}),
    ],
)
def test_a_control_character_in_any_text_parameter_is_a_422_with_a_reason(api, method, path, kwargs):
    api.register(VC01, UPPSALA)
    response = getattr(api, method)(path, **kwargs)
    assert response.status_code == 422, response.text
    assert "control character" in response.text or "styrtecken" in response.text


def test_a_nul_in_the_login_form_is_a_422_not_a_500(api):
    response = api.client.post("/logga-in", data={"token": f"abc{NUL}def"}, headers={"Origin": "http://testserver"})
    assert response.status_code == 422 and "vardkoll_session" not in response.headers.get("set-cookie", "")


def test_database_errors_never_carry_the_statement_parameters(api):
    secret = "token-hash-that-must-not-be-logged"
    with pytest.raises(DBAPIError) as raised:
        with api.services.engine.connect() as connection:
            connection.execute(text("SELECT :value FROM no_such_table"), {"value": secret})
    assert secret not in str(raised.value) and "hidden" in str(raised.value)


def test_a_login_from_another_site_sets_no_session_cookie(api):
    response = api.client.post("/logga-in", data={"token": ADMIN_TOKEN, "nasta": "/"}, headers={"Origin": "https://angripare.example"}, follow_redirects=False)
    assert response.status_code == 403 and "vardkoll_session" not in response.headers.get("set-cookie", "")
    assert "annan webbplats" in response.text
    same = api.client.post("/logga-in", data={"token": ADMIN_TOKEN, "nasta": "/"}, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert same.status_code == 303 and "vardkoll_session" in same.headers["set-cookie"]
