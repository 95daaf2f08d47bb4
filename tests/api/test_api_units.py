"""The unit registry through the API: round trip, validation that says what is wrong, targets."""

from __future__ import annotations

from .api_world import GAVLEBORG, UPPSALA, VC01, VC02

HOURS = {"mon": [["08:00", "12:00"], ["13:00", "17:00"]], "fri": [["08:00", "15:30"]]}


def test_registry_round_trip(api):
    created = api.post(
        "/api/v1/units", json={"unit": VC01, "name": "Vårdcentralen Ett", "region": UPPSALA, "opening_hours": HOURS, "unreached_callback_counts": False}
    )
    assert created.status_code == 201
    public = {
        "unit": VC01,
        "name": "Vårdcentralen Ett",
        "region": UPPSALA,
        "time_zone": "Europe/Stockholm",
        "opening_hours": HOURS,
        "unreached_callback_counts": False,
        "ownership": None,
        "municipality_code": None,
        "listed_patients": None,
    }
    assert created.json() == public
    assert api.get(f"/api/v1/units/{VC01}").json() == public
    assert api.get("/api/v1/units").json() == [public]

    changed = api.put(f"/api/v1/units/{VC01}", json={"region": GAVLEBORG, "opening_hours": None})
    assert changed.status_code == 200
    assert changed.json() == {**public, "region": GAVLEBORG, "opening_hours": None}  # fields not sent stay
    assert api.get(f"/api/v1/units?region={UPPSALA}").json() == []

    assert api.delete(f"/api/v1/units/{VC01}").status_code == 204
    assert api.get(f"/api/v1/units/{VC01}").status_code == 404
    assert api.delete(f"/api/v1/units/{VC01}").status_code == 404


def test_registering_a_unit_twice_is_409(api):
    api.register(VC01, UPPSALA)
    again = api.post("/api/v1/units", json={"unit": VC01, "name": "Igen", "region": UPPSALA})
    assert again.status_code == 409 and "already registered" in again.json()["detail"]


def _problems(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {".".join(str(part) for part in problem["loc"][1:]): problem["msg"] for problem in response.json()["detail"]}


def test_invalid_unit_says_what_is_wrong(api):
    problems = _problems(
        api.post(
            "/api/v1/units",
            json={
                "unit": "VC01",
                "name": "",
                "region": UPPSALA,
                "time_zone": "Europe/Uppsala",
                "opening_hours": {"mon": [["17:00", "08:00"]], "someday": [["08:00", "09:00"]]},
            },
        )
    )
    assert "HSA-id" in problems["unit"]
    assert "at least 1 character" in problems["name"]
    assert "unknown time zone" in problems["time_zone"]
    assert any("ends before it starts" in msg or "someday" in key for key, msg in problems.items())


def test_opening_hours_must_be_in_order_and_without_offset(api):
    late = _problems(api.post("/api/v1/units", json={"unit": VC01, "name": "x", "region": UPPSALA, "opening_hours": {"mon": [["17:00", "08:00"]]}}))
    assert "mon: the opening span 17:00–08:00 ends before it starts" in late["opening_hours"]
    zoned = _problems(api.post("/api/v1/units", json={"unit": VC01, "name": "x", "region": UPPSALA, "opening_hours": {"mon": [["08:00+01:00", "17:00"]]}}))
    assert "without offset" in zoned["opening_hours"]


def test_update_cannot_remove_required_fields_or_add_unknown_ones(api):
    api.register(VC01, UPPSALA)
    assert "cannot be removed" in " ".join(_problems(api.put(f"/api/v1/units/{VC01}", json={"name": None})).values())
    assert _problems(api.put(f"/api/v1/units/{VC01}", json={"colour": "blue"}))
    assert api.put(f"/api/v1/units/{VC02}", json={"name": "Ny"}).status_code == 404


def test_targets_round_trip_and_go_with_their_unit(api):
    api.register(VC01, UPPSALA)
    created = api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "assessment", "target": 0.85, "valid_from": "2026-01-01"})
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "unit": VC01, "metric": "assessment", "target": 0.85, "valid_from": "2026-01-01", "valid_to": None}
    assert api.get(f"/api/v1/units/{VC01}/targets").json() == [created.json()]
    same_start = api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "assessment", "target": 0.9, "valid_from": "2026-01-01"})
    assert same_start.status_code == 409
    assert api.delete(f"/api/v1/units/{VC01}/targets/{created.json()['id']}").status_code == 204
    assert api.get(f"/api/v1/units/{VC01}/targets").json() == []
    api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "telephone", "target": 0.8, "valid_from": "2026-01-01"})
    api.delete(f"/api/v1/units/{VC01}")
    api.register(VC01, UPPSALA)
    assert api.get(f"/api/v1/units/{VC01}/targets").json() == []


def test_invalid_target_says_what_is_wrong(api):
    api.register(VC01, UPPSALA)
    problems = _problems(api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "speed", "target": 1.5, "valid_from": "2026-02-30"}))
    assert set(problems) == {"metric", "target", "valid_from"}
    backwards = _problems(
        api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "telephone", "target": 0.9, "valid_from": "2026-03-01", "valid_to": "2026-02-01"})
    )
    assert "before valid_from" in " ".join(backwards.values())
    assert api.post(f"/api/v1/units/{VC02}/targets", json={"metric": "telephone", "target": 0.9, "valid_from": "2026-03-01"}).status_code == 404


def test_a_change_shows_in_figures_at_once(api):
    api.register(VC01, UPPSALA)
    params = {"metric": "telephone", "from": "2026-03-01", "to": "2026-03-31"}
    assert api.get(f"/api/v1/units/{VC01}/compliance", params=params).json()["target"] == 0.9
    api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "telephone", "target": 0.75, "valid_from": "2026-01-01"})
    assert api.get(f"/api/v1/units/{VC01}/compliance", params=params).json()["target"] == 0.75
