"""Installationsvy's forms: an enrollment code and replacing a device, from the page, guarded by a CSRF
token tied to the session; the code shown is a real one the collector can redeem."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from vardkoll.server.auth import Role, issue_token
from vardkoll.server.storage.enrollment_tables import EnrollmentCode
from vardkoll.server.storage.registry_tables import DeviceRow

from .test_login_and_scope import login
from .world import ADMIN_TOKEN, GAVLEBORG, OTHER, UPPSALA, VC01, token

CSRF = re.compile(r'name="csrf" value="(?P<value>[0-9a-f]*)"')
CODE = re.compile(r'id="kod"[^>]*>(?P<code>[A-Z]{5}-[A-Z]{5})<')


def csrf_of(client, unit: str = VC01) -> str:
    page = client.get(f"/installation/{unit}")
    assert page.status_code == 200
    return CSRF.search(page.text)["value"]


def codes_issued(services) -> int:
    with services.sessions() as session:
        return len(session.scalars(select(EnrollmentCode)).all())


def test_an_installer_gets_a_code_with_a_qr_code_that_the_collector_can_redeem(web):
    client, services = web
    login(client, token(services, Role.installer, region=UPPSALA))
    response = client.post(f"/installation/{VC01}/engangskod", data={"csrf": csrf_of(client), "insamlare": "", "giltighet": "4"})
    assert response.status_code == 200, response.text
    code = CODE.search(response.text)["code"]
    assert '<svg role="img"' in response.text and "QR-kod med engångskoden" in response.text
    assert f"--code {code}" in unescape(response.text) and response.headers["cache-control"] == "no-store"
    enrolled = client.post("/api/v1/enroll", json={"code": code, "device": "pi-ny-1"})
    assert enrolled.status_code == 200 and enrolled.json()["unit"] == VC01


def test_a_form_without_the_sessions_csrf_token_changes_nothing(web):
    client, services = web
    login(client, token(services, Role.installer, region=UPPSALA))
    for data in ({}, {"csrf": "0" * 64}, {"csrf": csrf_of(client) + "0"}):
        response = client.post(f"/installation/{VC01}/engangskod", data=data)
        assert response.status_code == 403 and "Formuläret kunde inte tas emot" in response.text
    # Another installer's token does not fit this session either.
    other_session = token(services, Role.installer, region=UPPSALA)
    stolen = csrf_of(client)
    login(client, other_session)
    assert client.post(f"/installation/{VC01}/engangskod", data={"csrf": stolen}).status_code == 403
    assert codes_issued(services) == 0


def test_a_form_posted_from_another_site_is_refused_even_with_the_token(web):
    client, services = web
    login(client, token(services, Role.installer, region=UPPSALA))
    response = client.post(f"/installation/{VC01}/engangskod", data={"csrf": csrf_of(client)}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and codes_issued(services) == 0


@pytest.mark.parametrize(
    "role, scope, unit",
    [
        (Role.clinic_manager, {"unit": VC01}, VC01),  # reads devices, manages none
        (Role.region_analyst, {"region": UPPSALA}, VC01),
        (Role.installer, {"region": GAVLEBORG}, VC01),  # another region
    ],
)
def test_only_device_managers_in_scope_may_issue_codes(web, role, scope, unit):
    client, services = web
    login(client, token(services, role, **scope))
    page = client.get(f"/installation/{unit}")
    csrf = CSRF.search(page.text)["value"] if page.status_code == 200 and CSRF.search(page.text) else ""
    assert "Skapa engångskod" not in page.text
    response = client.post(f"/installation/{unit}/engangskod", data={"csrf": csrf})
    assert response.status_code == 403 and "Ingen behörighet" in response.text
    assert codes_issued(services) == 0


def test_no_session_leads_to_login(web):
    client, _ = web
    response = client.post(f"/installation/{VC01}/engangskod", data={}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/logga-in")


def test_a_malformed_device_id_is_explained_in_swedish(web):
    client, services = web
    login(client, token(services, Role.installer, region=UPPSALA))
    response = client.post(f"/installation/{VC01}/engangskod", data={"csrf": csrf_of(client), "insamlare": "pi med mellanslag"})
    assert response.status_code == 400 and "kan inte vara ett insamlar-id" in response.text
    assert codes_issued(services) == 0


def test_replacing_a_device_retires_it_keeps_its_history_and_gives_a_code_for_the_successor(web):
    client, services = web
    with services.sessions.begin() as session:
        _, old_secret = issue_token(session, "device pi-reception", Role.device, unit=VC01, device="pi-reception")
    login(client, token(services, Role.installer, region=UPPSALA))
    response = client.post(f"/installation/{VC01}/ersatt", data={"csrf": csrf_of(client), "ersatt": "pi-reception", "insamlare": "pi-reception-2"})
    assert response.status_code == 200, response.text
    assert "pi-reception</span> är avregistrerad" in response.text
    code = CODE.search(response.text)["code"]
    assert client.post("/api/v1/events", content=b"[]", headers={"Authorization": f"Bearer {old_secret}"}).status_code == 401
    assert client.post("/api/v1/enroll", json={"code": code, "device": "pi-other"}).status_code == 403  # pinned to the successor
    assert client.post("/api/v1/enroll", json={"code": code, "device": "pi-reception-2"}).status_code == 200
    with services.sessions() as session:
        assert session.get(DeviceRow, (VC01, "pi-reception")).retired_at is not None
        assert session.get(DeviceRow, (VC01, "pi-reception-2")).retired_at is None
    page = client.get(f"/installation/{VC01}").text
    assert "pi-reception-2" in page and re.search(r"pi-reception <span class=\"badge neutral\">avregistrerad", page)


def test_replacing_an_unknown_device_says_so(web):
    client, services = web
    login(client, ADMIN_TOKEN)
    response = client.post(f"/installation/{VC01}/ersatt", data={"csrf": csrf_of(client), "ersatt": "pi-finns-inte"})
    assert response.status_code == 400 and "finns inte på enheten" in response.text
    assert codes_issued(services) == 0
    assert client.get(f"/installation/{OTHER}").status_code == 200  # admin sees every unit
