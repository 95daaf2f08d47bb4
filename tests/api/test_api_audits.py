"""`GET /units/{unit}/audits` shows the nightly self-audit's outcomes: every figure of the audited day, what
differed when a stored row was changed behind ingest's back, and only to those who may see the unit."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update

from .api_world import GAVLEBORG, UPPSALA, VC01, VC02, event
from vardkoll.server.jobs.self_audit import run_self_audit
from vardkoll.server.metrics import METRICS
from vardkoll.server.storage.tables import CallRow

NIGHT_AFTER = datetime(2026, 3, 3, 3, 15, tzinfo=ZoneInfo("Europe/Stockholm"))  # audits Monday 2 March


def test_the_audit_outcomes_show_what_differed_and_only_to_those_who_may_see_the_unit(api):
    api.register(VC01, UPPSALA)
    api.register(VC02, GAVLEBORG)
    sent = [
        event("a1", at="2026-03-02T08:00:00+01:00", call="call-one-1"),
        event("a1a", type="call.answered", at="2026-03-02T08:05:00+01:00", call="call-one-1"),
        event("a2", at="2026-03-02T09:00:00+01:00", call="call-two-2"),
    ]
    assert api.post("/api/v1/events", json=sent).status_code == 200
    with api.services.sessions.begin() as session:  # the stored answer vanishes: the API says 0 of 2, replay 1 of 2
        session.execute(update(CallRow).where(CallRow.unit == VC01, CallRow.call == "call-one-1").values(answered=None))
    run_self_audit(api.services, NIGHT_AFTER)

    period = {"from": "2026-03-02", "to": "2026-03-02"}
    response = api.get(f"/api/v1/units/{VC01}/audits", params=period)
    assert response.status_code == 200, response.text
    outcomes = {o["metric"]: o for o in response.json()}
    assert sorted(outcomes) == sorted(METRICS)
    assert {m: o["ok"] for m, o in outcomes.items()} == {m: m != "telephone" for m in METRICS}
    telephone = outcomes["telephone"]
    assert (telephone["unit"], telephone["day"]) == (VC01, "2026-03-02")
    assert telephone["difference"]["numerator"] == {"stored": 0, "recomputed": 1}
    assert telephone["difference"]["share"] == {"stored": 0.0, "recomputed": 0.5}
    assert all(o["difference"] == {} for m, o in outcomes.items() if m != "telephone")
    only = api.get(f"/api/v1/units/{VC01}/audits", params={**period, "mismatches_only": "true"}).json()
    assert [o["metric"] for o in only] == ["telephone"]
    assert api.get(f"/api/v1/units/{VC01}/audits", params={"from": "2026-03-03", "to": "2026-03-09"}).json() == []

    own = api.token("clinic_manager", unit=VC01)
    assert api.get(f"/api/v1/units/{VC01}/audits", token=own, params=period).status_code == 200
    other = api.token("clinic_manager", unit=VC02)
    assert api.get(f"/api/v1/units/{VC01}/audits", token=other, params=period).status_code == 403
    backwards = api.get(f"/api/v1/units/{VC01}/audits", params={"from": "2026-03-03", "to": "2026-03-02"})
    assert backwards.status_code == 422 and "before" in backwards.text
    too_long = api.get(f"/api/v1/units/{VC01}/audits", params={"from": "2025-01-01", "to": "2026-03-02"})
    assert too_long.status_code == 422 and "366 days" in too_long.text
