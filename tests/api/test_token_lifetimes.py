"""Tokens expire, show when they were last used, and can be rotated with an overlap (issue 16)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .api_world import UPPSALA, VC01
from vardkoll.server.storage.registry_tables import ApiToken


def _create(api, **spec):
    response = api.post("/api/v1/tokens", json={"name": "uppföljning", "role": "region_analyst", "region": UPPSALA, **spec})
    assert response.status_code == 201, response.text
    return response.json()


def _days(created: dict) -> float:
    return (datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(created["created_at"])) / timedelta(days=1)


def test_peoples_tokens_live_a_year_devices_two_unless_told(api):
    assert _days(_create(api)) == 365
    assert _days(_create(api, role="device", region=None, unit=VC01, device="pi-1")) == 730
    assert _days(_create(api, valid_days=30)) == 30


def test_an_expired_token_is_refused_like_an_unknown_one(api):
    created = _create(api)
    assert api.get("/api/v1/units", token=created["token"]).status_code == 200
    with api.services.sessions.begin() as session:
        session.get(ApiToken, created["id"]).expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    refused = api.get("/api/v1/units", token=created["token"])
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_the_last_use_is_recorded(api):
    created = _create(api)
    assert created["last_used_at"] is None
    api.get("/api/v1/units", token=created["token"])
    listed = {t["id"]: t for t in api.get("/api/v1/tokens").json()}
    used = datetime.fromisoformat(listed[created["id"]]["last_used_at"])
    assert datetime.now(timezone.utc) - used < timedelta(minutes=1)


def test_rotation_gives_a_new_secret_and_the_old_one_works_through_the_overlap_only(api):
    old = _create(api)
    rotated = api.post(f"/api/v1/tokens/{old['id']}/rotate", json={"overlap_hours": 24})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert (new["name"], new["role"], new["region"], new["rotated_from"]) == (old["name"], "region_analyst", UPPSALA, old["id"])
    assert api.get("/api/v1/units", token=new["token"]).status_code == 200
    assert api.get("/api/v1/units", token=old["token"]).status_code == 200  # within the overlap
    listed = {t["id"]: t for t in api.get("/api/v1/tokens").json()}
    left = datetime.fromisoformat(listed[old["id"]]["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(hours=23) < left <= timedelta(hours=24)
    at_once = api.post(f"/api/v1/tokens/{new['id']}/rotate", json={"overlap_hours": 0}).json()
    assert api.get("/api/v1/units", token=new["token"]).status_code == 401
    assert api.get("/api/v1/units", token=at_once["token"]).status_code == 200


def test_a_revoked_token_is_not_rotated(api):
    old = _create(api)
    assert api.delete(f"/api/v1/tokens/{old['id']}").status_code == 204
    refused = api.post(f"/api/v1/tokens/{old['id']}/rotate", json={})
    assert refused.status_code == 409 and "revoked" in refused.json()["detail"]
    assert api.post("/api/v1/tokens/999/rotate", json={}).status_code == 404
