"""API tokens: the secret is shown once and stored only as its SHA-256; scope must fit the role."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from .api_world import UPPSALA, VC01
from vardkoll.server.storage.registry_tables import ApiToken


def test_a_created_token_works_and_its_secret_is_shown_only_once(api):
    created = api.post("/api/v1/tokens", json={"name": "Chef VC01", "role": "clinic_manager", "unit": VC01})
    assert created.status_code == 201
    body = created.json()
    secret = body.pop("token")
    assert len(secret) >= 40 and body["role"] == "clinic_manager" and body["unit"] == VC01 and body["revoked_at"] is None
    assert api.get(f"/api/v1/units/{VC01}/compliance?metric=telephone&from=2026-03-01&to=2026-03-02", token=secret).status_code == 200
    listed = api.get("/api/v1/tokens")
    assert listed.json() == [{**body, "last_used_at": listed.json()[0]["last_used_at"]}] and secret not in listed.text
    assert body["last_used_at"] is None and listed.json()[0]["last_used_at"] is not None  # used once above
    with api.services.sessions() as session:
        row = session.scalars(select(ApiToken)).one()
    assert row.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()


def test_revoking_is_immediate_and_kept_on_record(api):
    created = api.post("/api/v1/tokens", json={"name": "Analys", "role": "region_analyst", "region": UPPSALA}).json()
    assert api.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    assert api.get("/api/v1/units", token=created["token"]).status_code == 401
    assert api.get("/api/v1/tokens").json()[0]["revoked_at"] is not None
    assert api.delete("/api/v1/tokens/999").status_code == 404


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"role": "clinic_manager"}, "needs a unit"),
        ({"role": "clinic_manager", "unit": VC01, "region": UPPSALA}, "takes no region"),
        ({"role": "region_analyst"}, "needs a region"),
        ({"role": "device", "unit": VC01}, "needs a device"),
        ({"role": "device", "unit": "VC01", "device": "pi-1"}, "HSA-id"),
        ({"role": "device", "unit": VC01, "device": "pi 1"}, "device must be"),
        ({"role": "admin", "unit": VC01}, "takes no unit"),
        ({"role": "superuser"}, "Input should be"),
    ],
)
def test_scope_must_fit_the_role(api, spec, says):
    response = api.post("/api/v1/tokens", json={"name": "t", **spec})
    assert response.status_code == 422
    assert says in response.json()["detail"][0]["msg"]


def test_an_installer_without_region_works_everywhere(api):
    created = api.post("/api/v1/tokens", json={"name": "Installatör", "role": "installer"})
    assert created.status_code == 201 and created.json()["region"] is None
