"""`GET /series` gives each period's figure as `GET /compliance` does, and `GET /units/{unit}/events`
exports the stored events so that `vardkoll replay` gives the API's figures (SPEC 4)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from .api_world import GAVLEBORG, UPPSALA, VC01, VC02, Api, event
from vardkoll.server.figures.periods import periods_of
from vardkoll.server.metrics import Period
from vardkoll.server.replay import replay_path

CASES = Path(__file__).parents[1] / "fixtures" / "cases"


def _events_of(jsonl: Path) -> list:
    items = []
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return items


def test_week_periods_start_on_mondays_and_are_cut_at_the_span():
    # 2026-03-04 is a Wednesday; 2026-03-15 a Sunday.
    assert periods_of(Period(date(2026, 3, 4), date(2026, 3, 15)), "week") == [
        Period(date(2026, 3, 4), date(2026, 3, 8)),
        Period(date(2026, 3, 9), date(2026, 3, 15)),
    ]
    assert periods_of(Period(date(2025, 12, 15), date(2026, 2, 2)), "month") == [
        Period(date(2025, 12, 15), date(2025, 12, 31)),
        Period(date(2026, 1, 1), date(2026, 1, 31)),
        Period(date(2026, 2, 1), date(2026, 2, 2)),
    ]
    assert len(periods_of(Period(date(2024, 2, 28), date(2024, 3, 1)), "day")) == 3  # a leap day


def _calls(api: Api) -> None:
    """Monday 2 March: two offered calls, one answered. Tuesday 3 March: one offered, answered. Wednesday: none."""
    api.register(VC01, UPPSALA)
    sent = [
        event("m1", at="2026-03-02T08:00:00+01:00", call="call-mon-1"),
        event("m1a", type="call.answered", at="2026-03-02T08:05:00+01:00", call="call-mon-1"),
        event("m2", at="2026-03-02T09:00:00+01:00", call="call-mon-2"),
        event("t1", at="2026-03-03T10:00:00+01:00", call="call-tue-1"),
        event("t1a", type="call.answered", at="2026-03-03T10:01:00+01:00", call="call-tue-1"),
    ]
    assert api.post("/api/v1/events", json=sent).status_code == 200


def test_a_day_series_is_each_days_figure(api):
    _calls(api)
    response = api.get("/api/v1/series", params={"metric": "telephone", "unit": VC01, "grain": "day", "from": "2026-03-02", "to": "2026-03-04"})
    assert response.status_code == 200, response.text
    days = response.json()
    assert [(f["from"], f["to"], f["numerator"], f["denominator"], f["share"]) for f in days] == [
        ("2026-03-02", "2026-03-02", 1, 2, 0.5),
        ("2026-03-03", "2026-03-03", 1, 1, 1.0),
        ("2026-03-04", "2026-03-04", 0, 0, None),
    ]
    for figure in days:
        single = api.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": figure["from"], "to": figure["to"]})
        assert single.json() == figure
    week = api.get("/api/v1/series", params={"metric": "telephone", "region": UPPSALA, "grain": "week", "from": "2026-03-02", "to": "2026-03-08"}).json()
    assert [(f["unit"], f["numerator"], f["denominator"]) for f in week] == [(VC01, 2, 3)]


def test_a_series_refuses_what_it_cannot_answer(api):
    _calls(api)
    both = api.get("/api/v1/series", params={"metric": "telephone", "unit": VC01, "region": UPPSALA, "grain": "day", "from": "2026-03-02", "to": "2026-03-04"})
    assert both.status_code == 422 and "exactly one of unit or region" in both.text
    many = api.get("/api/v1/series", params={"metric": "telephone", "unit": VC01, "grain": "day", "from": "2025-01-01", "to": "2026-03-04"})
    assert many.status_code == 422 and "coarser grain" in many.text
    manager = api.token("clinic_manager", unit=VC02)
    elsewhere = api.get("/api/v1/series", token=manager, params={"metric": "telephone", "unit": VC01, "grain": "day", "from": "2026-03-02", "to": "2026-03-04"})
    assert elsewhere.status_code == 403


@pytest.mark.parametrize("case", ["assess-scope", "tel-abandon-callback", "continuity-window", "fixed-doctor-snapshots"])
def test_replaying_the_export_gives_the_api_figures(api, case, tmp_path):
    jsonl = CASES / f"{case}.jsonl"
    args = json.loads((CASES / f"{case}.expected.json").read_text())["replay_args"]
    items = _events_of(jsonl)
    for unit in sorted({item["unit"] for item in items if isinstance(item, dict) and "unit" in item}):
        api.register(unit, UPPSALA)
    api.post("/api/v1/events", json=[item for item in items if isinstance(item, dict)])
    exported = tmp_path / "export.jsonl"
    chunks = []
    for unit in sorted({item["unit"] for item in items if isinstance(item, dict) and "unit" in item}):
        response = api.get(f"/api/v1/units/{unit}/events", params={"from": "2000-01-01", "to": args["to"]})
        assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
        chunks.append(response.content)
    exported.write_bytes(b"".join(chunks))
    replayed = replay_path(exported, date.fromisoformat(args["from"]), date.fromisoformat(args["to"]), workers=0)
    assert replayed["rejected"] == []
    for expected in replayed["results"]:
        answered = api.get(f"/api/v1/units/{expected['unit']}/compliance", params={"metric": expected["metric"], "from": args["from"], "to": args["to"]})
        assert {k: v for k, v in answered.json().items() if k not in ("definition_version", "data")} == expected


def test_the_export_holds_the_period_only_and_only_for_those_who_may_see_the_unit(api, monkeypatch):
    from vardkoll.server.api import event_export

    monkeypatch.setattr(event_export, "PAGE_ROWS", 2)  # three events of Monday come in two pages
    _calls(api)
    api.register(VC02, GAVLEBORG)
    monday = api.get(f"/api/v1/units/{VC01}/events", params={"from": "2026-03-02", "to": "2026-03-02"})
    assert [json.loads(line)["id"] for line in monday.text.splitlines()] == ["m1", "m1a", "m2"]
    own = api.token("clinic_manager", unit=VC01)
    assert api.get(f"/api/v1/units/{VC01}/events", token=own, params={"from": "2026-03-02", "to": "2026-03-03"}).status_code == 200
    other = api.token("clinic_manager", unit=VC02)
    assert api.get(f"/api/v1/units/{VC01}/events", token=other, params={"from": "2026-03-02", "to": "2026-03-03"}).status_code == 403
    installer = api.token("installer", region=UPPSALA)
    assert api.get(f"/api/v1/units/{VC01}/events", token=installer, params={"from": "2026-03-02", "to": "2026-03-03"}).status_code == 403
    backwards = api.get(f"/api/v1/units/{VC01}/events", params={"from": "2026-03-03", "to": "2026-03-02"})
    assert backwards.status_code == 422 and "before" in backwards.text


def test_each_period_of_a_series_equals_replay_of_the_export(api, tmp_path):
    """By hand: March holds 2 of 3 calls with same-day contact (Monday 1 of 2, Tuesday 1 of 1); April 0 of 1."""
    _calls(api)
    assert api.post("/api/v1/events", json=[event("a1", at="2026-04-01T08:00:00+02:00", call="call-apr-1")]).status_code == 200
    exported = tmp_path / "export.jsonl"
    exported.write_bytes(api.get(f"/api/v1/units/{VC01}/events", params={"from": "2026-03-01", "to": "2026-04-30"}).content)

    def replayed(first: str, last: str) -> tuple[int, int]:
        figure = next(r for r in replay_path(exported, date.fromisoformat(first), date.fromisoformat(last), workers=0)["results"] if r["metric"] == "telephone")
        return figure["numerator"], figure["denominator"]

    span = {"metric": "telephone", "grain": "month", "from": "2026-03-01", "to": "2026-04-30"}
    by_unit = api.get("/api/v1/series", params={**span, "unit": VC01}).json()
    by_region = api.get("/api/v1/series", params={**span, "region": UPPSALA}).json()
    assert [(f["from"], f["to"], f["numerator"], f["denominator"]) for f in by_unit] == [("2026-03-01", "2026-03-31", 2, 3), ("2026-04-01", "2026-04-30", 0, 1)]
    assert [(f["unit"], f["from"], f["numerator"], f["denominator"]) for f in by_region] == [
        (VC01, f["from"], f["numerator"], f["denominator"]) for f in by_unit
    ]
    assert [(f["numerator"], f["denominator"]) for f in by_unit] == [replayed(f["from"], f["to"]) for f in by_unit]
    days = api.get("/api/v1/series", params={"metric": "telephone", "unit": VC01, "grain": "day", "from": "2026-03-02", "to": "2026-03-03"}).json()
    assert [(f["numerator"], f["denominator"]) for f in days] == [replayed(f["from"], f["to"]) for f in days] == [(1, 2), (1, 1)]


def test_a_series_downloads_as_csv_with_the_same_figures(api):
    _calls(api)
    params = {"metric": "telephone", "region": UPPSALA, "grain": "day", "from": "2026-03-02", "to": "2026-03-03", "format": "csv"}
    response = api.get("/api/v1/series", params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"] and "telephone-day-2026-03-02-2026-03-03.csv" in response.headers["content-disposition"]
    rows = [line.split(",") for line in response.text.splitlines()]
    assert rows[0][:7] == ["unit", "metric", "from", "to", "numerator", "denominator", "share"]
    assert [row[:7] for row in rows[1:]] == [
        [VC01, "telephone", "2026-03-02", "2026-03-02", "1", "2", "0.5"],
        [VC01, "telephone", "2026-03-03", "2026-03-03", "1", "1", "1.0"],
    ]
