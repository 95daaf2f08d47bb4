"""Enrollment: installers get one-time codes; a code is redeemed once for a device token, never twice or late."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from sqlalchemy import select

from vardkoll.server.provisioning import FAILURE_LIMIT, code_digest
from vardkoll.server.storage.enrollment_tables import EnrollmentCode
from vardkoll.server.storage.registry_tables import ApiToken, DeviceRow

from .api_world import GAVLEBORG, UPPSALA, VC01, VC10, Api, event, running_api

CODE = re.compile(r"^[A-HJKMNP-Z]{5}-[A-HJKMNP-Z]{5}$")


@pytest.fixture
def api(tmp_path) -> Iterator[Api]:
    with running_api(f"sqlite:///{tmp_path}/t.db", mqtt_url="mqtts://mqtt.example.test:8883") as api:
        api.register(VC01, UPPSALA)
        api.register(VC10, GAVLEBORG)
        yield api


def new_code(api: Api, unit: str = VC01, token: str | None = None, **body) -> str:
    kwargs = {"token": token} if token else {}
    response = api.post(f"/api/v1/units/{unit}/enrollment-codes", json=body or None, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()["code"]


def enroll(api: Api, code: str, device: str = "pi-vc01-1", client: str | None = None):
    return api.client.post("/api/v1/enroll", json={"code": code, "device": device})


def test_a_code_is_short_letters_valid_a_day_and_stored_only_hashed(api):
    response = api.post(f"/api/v1/units/{VC01}/enrollment-codes", token=api.token("installer", region=UPPSALA))
    body = response.json()
    assert response.status_code == 201 and CODE.match(body["code"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=23, minutes=59) < (expires.replace(tzinfo=expires.tzinfo or timezone.utc) - datetime.now(timezone.utc)) <= timedelta(hours=24)
    with api.services.sessions() as session:
        row = session.scalars(select(EnrollmentCode)).one()
        assert row.code_sha256 == code_digest(body["code"]) and body["code"].replace("-", "") not in repr(row)


def test_redeeming_registers_the_device_and_returns_a_device_token_and_broker_details(api):
    code = new_code(api)
    response = enroll(api, code.lower().replace("-", " "))  # typed by a person: case and separators do not matter
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["unit"] == VC01 and body["device"] == "pi-vc01-1"
    # manual broker setup (the default): no broker account is handed out
    assert body["mqtt"] == {
        "url": "mqtts://mqtt.example.test:8883",
        "topic_prefix": api.services.settings.topic_prefix,
        "username": None,
        "password": None,
        "client_id": f"{VC01}/pi-vc01-1",
    }
    assert api.post("/api/v1/events", json=[event("enrolled-1", VC01)], token=body["token"]).status_code == 200
    assert api.get(f"/api/v1/units/{VC01}", token=body["token"]).status_code == 403  # a device token, nothing more
    devices = api.get(f"/api/v1/units/{VC01}/devices").json()
    assert [(d["device"], d["retired_at"]) for d in devices] == [("pi-vc01-1", None)]


def test_a_code_is_redeemed_once(api):
    code = new_code(api)
    assert enroll(api, code).status_code == 200
    again = enroll(api, code, device="pi-vc01-2")
    assert again.status_code == 403 and "used already" in again.json()["detail"]


def test_an_expired_code_is_refused(api):
    code = new_code(api)
    with api.services.sessions.begin() as session:
        row = session.scalars(select(EnrollmentCode)).one()
        row.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    response = enroll(api, code)
    assert response.status_code == 403 and "expired" in response.json()["detail"]


def test_an_unknown_code_is_refused_without_echoing_it(api):
    response = enroll(api, "ABCDE-FGHJK")
    assert response.status_code == 403 and "ABCDE" not in response.text


def test_an_installer_out_of_scope_gets_403_and_a_device_or_analyst_cannot_issue(api):
    assert api.post(f"/api/v1/units/{VC10}/enrollment-codes", token=api.token("installer", region=UPPSALA)).status_code == 403
    assert api.post(f"/api/v1/units/{VC01}/enrollment-codes", token=api.token("region_analyst", region=UPPSALA)).status_code == 403
    assert api.post(f"/api/v1/units/{VC01}/enrollment-codes", token=api.token("device", unit=VC01, device="pi-x")).status_code == 403
    assert api.post(f"/api/v1/units/{VC01}/enrollment-codes").status_code == 201  # admin
    assert api.client.post(f"/api/v1/units/{VC01}/enrollment-codes").status_code == 401


def test_an_unregistered_unit_gets_no_codes(api):
    assert api.post("/api/v1/units/SE2321000016-NONE/enrollment-codes").status_code == 404


def test_a_code_for_one_device_id_is_refused_for_another(api):
    code = new_code(api, device="pi-vc01-7", valid_hours=1)
    assert enroll(api, code, device="pi-vc01-8").status_code == 403
    assert enroll(api, code, device="pi-vc01-7").status_code == 200


def test_a_bad_device_id_is_422(api):
    assert api.client.post("/api/v1/enroll", json={"code": new_code(api), "device": "no spaces"}).status_code == 422


def test_re_enrolling_a_retired_device_reactivates_it_and_revokes_its_old_tokens(api):
    first = enroll(api, new_code(api)).json()
    assert api.delete(f"/api/v1/units/{VC01}/devices/pi-vc01-1").status_code == 200
    second = enroll(api, new_code(api)).json()
    assert api.post("/api/v1/events", json=[event("old-token", VC01)], token=first["token"]).status_code == 401
    assert api.post("/api/v1/events", json=[event("new-token", VC01)], token=second["token"]).status_code == 200
    with api.services.sessions() as session:
        assert session.get(DeviceRow, (VC01, "pi-vc01-1")).retired_at is None
        assert len(session.scalars(select(ApiToken).where(ApiToken.device == "pi-vc01-1")).all()) == 2


def test_guessing_is_limited_per_client(api):
    code = new_code(api)
    for n in range(FAILURE_LIMIT):
        assert enroll(api, f"WRONG-GUES{'ABCDEFGHJK'[n]}").status_code == 403
    limited = enroll(api, code)  # even the right code waits now
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    with api.services.sessions.begin() as session:  # the window passes
        from vardkoll.server.storage.enrollment_tables import EnrollmentFailure

        for row in session.scalars(select(EnrollmentFailure)):
            row.at = row.at - timedelta(hours=1)
    assert enroll(api, code).status_code == 200


def test_replacing_a_device_retires_it_stops_its_token_and_gives_a_code_for_the_successor(api):
    old = enroll(api, new_code(api), device="pi-vc01-old").json()
    response = api.post(f"/api/v1/units/{VC01}/devices/pi-vc01-old/replacement", token=api.token("installer", region=UPPSALA), json={"device": "pi-vc01-new"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert CODE.match(body["code"]) and body["unit"] == VC01 and body["device"] == "pi-vc01-new"
    assert api.post("/api/v1/events", json=[event("from-old", VC01)], token=old["token"]).status_code == 401
    new = enroll(api, body["code"], device="pi-vc01-new")
    assert new.status_code == 200 and new.json()["unit"] == VC01
    devices = {d["device"]: d["retired_at"] for d in api.get(f"/api/v1/units/{VC01}/devices").json()}
    assert devices["pi-vc01-old"] is not None and devices["pi-vc01-new"] is None  # the old one stays, retired


def test_replacing_needs_a_registered_device_in_scope(api):
    assert api.post(f"/api/v1/units/{VC01}/devices/pi-none/replacement").status_code == 404
    enroll(api, new_code(api), device="pi-vc01-old")
    assert api.post(f"/api/v1/units/{VC01}/devices/pi-vc01-old/replacement", token=api.token("installer", region=GAVLEBORG)).status_code == 403
    assert api.post(f"/api/v1/units/{VC01}/devices/pi-vc01-old/replacement", token=api.token("clinic_manager", unit=VC01)).status_code == 403
    with api.services.sessions() as session:
        assert session.get(DeviceRow, (VC01, "pi-vc01-old")).retired_at is None  # refused requests change nothing
