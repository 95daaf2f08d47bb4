"""Nycklar and Åtkomstlogg, the admins' pages: rotate with an overlap, revoke, and the access log filtered."""

from __future__ import annotations

import re

from vardkoll.server.auth import Role

from .test_login_and_scope import login
from .world import ADMIN_TOKEN, VC01, token

CSRF = re.compile(r'name="csrf" value="(?P<value>[0-9a-f]*)"')
SECRET = re.compile(r'id="ny-nyckel">(?P<secret>[^<]+)<')


def works(client, secret: str) -> bool:
    return client.get("/api/v1/units", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_an_admin_rotates_a_token_with_an_overlap_and_revokes_another(web):
    client, services = web
    analyst = token(services, Role.region_analyst, region="Region Uppsala")
    manager = token(services, Role.clinic_manager, unit=VC01)
    login(client, ADMIN_TOKEN)
    listing = client.get("/nycklar")
    assert listing.status_code == 200 and "webbtest region_analyst" in listing.text and "Senast använd" in listing.text
    csrf = CSRF.search(listing.text)["value"]
    rotated = client.post("/nycklar/1/byt", data={"csrf": csrf, "overlapp": "24"})
    new_secret = SECRET.search(rotated.text)["secret"]
    assert works(client, new_secret) and works(client, analyst)  # the old one still works for 24 h
    assert client.post("/nycklar/2/aterkalla", data={"csrf": csrf}).status_code == 200
    assert not works(client, manager)
    assert client.post("/nycklar/1/aterkalla", data={"csrf": "0" * 64}).status_code == 403  # no CSRF token, no change
    assert works(client, analyst)


def test_only_admins_see_the_tokens_and_the_access_log(web):
    client, services = web
    login(client, token(services, Role.clinic_manager, unit=VC01))
    assert client.get("/nycklar").status_code == 403
    assert client.get("/atkomstlogg").status_code == 403


def test_the_access_log_page_filters_by_action_and_unit(web):
    client, services = web
    login(client, token(services, Role.clinic_manager, unit=VC01))
    client.get(f"/enhet/{VC01}")  # a read of case-level data
    login(client, ADMIN_TOKEN)
    reads = client.get("/atkomstlogg", params={"handling": "read", "enhet": VC01}).text
    assert "read:at_risk" in reads and "webbtest clinic_manager" in reads and ">sign_in<" not in reads
    sign_ins = client.get("/atkomstlogg", params={"handling": "sign_in"}).text
    assert "API token pasted" in sign_ins and "read:at_risk" not in sign_ins
