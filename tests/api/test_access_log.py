"""The access log records reads of case-level data and changes, with who, when, which unit and from where;
only admins read it (issue 16)."""

from __future__ import annotations

import json

from .api_world import ADMIN_TOKEN, UPPSALA, VC01, event
from vardkoll.protocol import contains_personal_number
from vardkoll.server.auth import ADMIN_TOKEN_NAME


def test_changes_and_case_level_reads_are_recorded_and_refused_reads_are_not(api):
    api.register(VC01, UPPSALA)
    assert api.post("/api/v1/events", json=[event("e1")]).status_code == 200
    manager = api.token("clinic_manager", unit=VC01)
    assert api.get(f"/api/v1/units/{VC01}/events", token=manager, params={"from": "2026-03-02", "to": "2026-03-02"}).status_code == 200
    other = api.token("clinic_manager", unit="SE2321000016-VC77")
    assert api.get(f"/api/v1/units/{VC01}/events", token=other, params={"from": "2026-03-02", "to": "2026-03-02"}).status_code == 403
    assert api.post("/api/v1/units", json={"unit": "bad", "name": "x", "region": UPPSALA}).status_code == 422  # no change made

    records = api.get("/api/v1/access-log").json()
    summary = [(r["who"], r["action"], r["unit"], r["detail"]) for r in reversed(records)]
    assert summary == [
        (ADMIN_TOKEN_NAME, "change:POST", None, "/api/v1/units"),  # the unit registered
        (ADMIN_TOKEN_NAME, "change:POST", None, "/api/v1/events"),  # events posted by an admin are a change too
        ("test clinic_manager SE2321000016-VC01", "read:events", VC01, "events 2026-03-02 to 2026-03-02"),
    ]
    read = records[0]
    assert read["role"] == "clinic_manager" and read["token_id"] is not None and read["client"] == "testclient"
    assert not any(contains_personal_number(json.dumps(r, ensure_ascii=False)) for r in records)


def test_the_log_filters_and_only_admins_read_it(api):
    api.register(VC01, UPPSALA)
    api.get(f"/api/v1/units/{VC01}/events", params={"from": "2026-03-02", "to": "2026-03-02"})
    reads = api.get("/api/v1/access-log", params={"action": "read"}).json()
    assert [r["action"] for r in reads] == ["read:events"]
    assert api.get("/api/v1/access-log", params={"unit": "SE2321000016-VC99"}).json() == []
    analyst = api.token("region_analyst", region=UPPSALA)
    assert api.get("/api/v1/access-log", token=analyst).status_code == 403
    assert api.get("/api/v1/access-log", token=ADMIN_TOKEN, params={"unit": "nope"}).status_code == 422
