"""The figure endpoints give what `vardkoll replay` gives on the same events and period (SPEC 4)."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime
from pathlib import Path

import pytest

from .api_world import UPPSALA, VC01, VC10, Api, event
from vardkoll.server.replay import replay_path

FIXTURES = Path(__file__).parents[1] / "fixtures"
SCENARIOS = sorted(FIXTURES.glob("*/*.expected.json"))
METRICS = ("assessment", "continuity", "fixed_doctor", "telephone")


def _events_of(jsonl: Path) -> list:
    """The lines that are JSON at all (an array cannot carry the others), in file order."""
    items = []
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return items


def _post_shuffled(api: Api, items: list, seed: int) -> dict[str, int]:
    """Post in shuffled batches, a third of the events twice; return the summed counts."""
    rng = random.Random(seed)
    sent = items + rng.sample(items, len(items) // 3)
    rng.shuffle(sent)
    totals = {"new": 0, "duplicates": 0}
    for start in range(0, len(sent), 7):
        response = api.post("/api/v1/events", json=sent[start : start + 7])
        assert response.status_code == 200, response.text
        for key in totals:
            totals[key] += response.json()[key]
    return totals


def _query(args: dict) -> dict:
    query = {"from": args["from"], "to": args["to"]}
    if "as_of" in args:
        query["as_of"] = args["as_of"]
    return query


def _as_replayed(figure: dict) -> dict:
    return {key: value for key, value in figure.items() if key not in ("definition_version", "data")}


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_unit_figures_equal_replay_after_posting_the_events(api, expected_path):
    jsonl = expected_path.with_name(expected_path.name.replace(".expected.json", ".jsonl"))
    args = json.loads(expected_path.read_text())["replay_args"]
    replayed = replay_path(
        jsonl,
        datetime.fromisoformat(args["from"]).date(),
        datetime.fromisoformat(args["to"]).date(),
        datetime.fromisoformat(args["as_of"]) if "as_of" in args else None,
        workers=0,
    )
    _post_shuffled(api, _events_of(jsonl), seed=len(jsonl.name))
    for expected in replayed["results"]:
        response = api.get(f"/api/v1/units/{expected['unit']}/compliance", params={"metric": expected["metric"], **_query(args)})
        assert response.status_code == 200, response.text
        figure = response.json()
        assert _as_replayed(figure) == expected
        assert figure["definition_version"] == replayed["definition_versions"][expected["metric"]]
        assert figure["data"]["no_data"] is False and figure["data"]["last_event_at"]


@pytest.mark.parametrize("expected_path", [p for p in SCENARIOS if p.name.startswith("two-units")], ids=["two-units"])
def test_region_list_equals_replay_one_figure_per_unit(api, expected_path):
    jsonl = expected_path.with_name(expected_path.name.replace(".expected.json", ".jsonl"))
    args = json.loads(expected_path.read_text())["replay_args"]
    replayed = replay_path(jsonl, datetime.fromisoformat(args["from"]).date(), datetime.fromisoformat(args["to"]).date(), workers=0)
    for unit in sorted({r["unit"] for r in replayed["results"]}):
        api.register(unit, UPPSALA)
    _post_shuffled(api, _events_of(jsonl), seed=3)
    for metric in METRICS:
        response = api.get("/api/v1/compliance", params={"metric": metric, "region": UPPSALA, **_query(args)})
        assert response.status_code == 200
        assert [_as_replayed(f) for f in response.json()] == [r for r in replayed["results"] if r["metric"] == metric]


def test_csv_export_carries_the_same_numbers_as_json(api):
    jsonl = next(p for p in SCENARIOS if p.name.startswith("two-units")).with_name("two-units.jsonl")
    replayed = replay_path(jsonl, workers=0)
    for unit in sorted({r["unit"] for r in replayed["results"]}):
        api.register(unit, UPPSALA)
    _post_shuffled(api, _events_of(jsonl), seed=5)
    params = {"metric": "telephone", "from": "2026-05-04", "to": "2026-05-04", "region": UPPSALA}
    figures = api.get("/api/v1/compliance", params=params).json()
    exported = api.get("/api/v1/compliance", params={**params, "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"].startswith("attachment; filename=") and ".csv" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == len(figures) == 2
    for row, figure in zip(rows, figures):
        assert (row["unit"], row["metric"], row["from"], row["to"]) == (figure["unit"], "telephone", figure["from"], figure["to"])
        assert int(row["numerator"]) == figure["numerator"] and int(row["denominator"]) == figure["denominator"]
        assert (float(row["share"]) if row["share"] else None) == figure["share"]
        assert float(row["target"]) == figure["target"]
        assert row["meets_target"] == ("" if figure["meets_target"] is None else str(figure["meets_target"]).lower())
        assert row["small_n"] == str(figure["details"]["small_n"]).lower()
        assert int(row["definition_version"]) == figure["definition_version"]
        assert row["last_event_at"] == figure["data"]["last_event_at"] and row["no_data"] == "false"
    by_accept = api.get("/api/v1/compliance", params=params, headers={"Accept": "text/csv"})
    assert by_accept.text == exported.text


def test_target_valid_on_the_periods_last_day_is_used(api):
    api.register(VC01, UPPSALA)
    for target, start, end in ((0.7, "2026-01-01", "2026-02-28"), (0.8, "2026-03-01", None), (0.95, "2026-04-01", "2026-04-30")):
        response = api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "telephone", "target": target, "valid_from": start, "valid_to": end})
        assert response.status_code == 201, response.text

    def target_for(start: str, end: str) -> float | None:
        return api.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": start, "to": end}).json()["target"]

    assert target_for("2026-02-01", "2026-02-28") == 0.7
    assert target_for("2026-02-01", "2026-03-01") == 0.8  # the one valid on `to`
    assert target_for("2026-04-15", "2026-04-30") == 0.95  # overlapping: the later start applies
    assert target_for("2026-05-01", "2026-05-31") == 0.8
    assert target_for("2025-12-01", "2025-12-31") == 0.9  # before any: the default


def test_as_of_counts_only_what_was_known_then(api):
    api.post(
        "/api/v1/events",
        json=[
            event("o-1", at="2026-03-02T08:00:00+01:00", call="call-0001"),
            event("a-1", type="call.answered", at="2026-03-02T09:00:00+01:00", call="call-0001"),
        ],
    )
    base = {"metric": "telephone", "from": "2026-03-02", "to": "2026-03-02"}
    early = api.get(f"/api/v1/units/{VC01}/compliance", params={**base, "as_of": "2026-03-02T08:30:00+01:00"}).json()
    assert (early["numerator"], early["denominator"]) == (0, 1)
    # An unencoded "+" arrives as a space; the offset is still understood.
    spaced = api.get(f"/api/v1/units/{VC01}/compliance?metric=telephone&from=2026-03-02&to=2026-03-02&as_of=2026-03-02T08:30:00+01:00")
    assert spaced.status_code == 200 and spaced.json()["numerator"] == 0
    late = api.get(f"/api/v1/units/{VC01}/compliance", params=base).json()
    assert (late["numerator"], late["denominator"]) == (1, 1)


def test_a_unit_without_events_says_no_data(api):
    figure = api.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "assessment", "from": "2026-03-01", "to": "2026-03-31"}).json()
    assert figure["share"] is None and figure["meets_target"] is None and figure["data"]["no_data"] is True


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("metric=telephone&from=2026-13-01&to=2026-03-02", "from", "must be a date"),
        ("metric=telephone&from=2026-03-05&to=2026-03-02", "to", "before 'from'"),
        ("metric=speed&from=2026-03-01&to=2026-03-02", "metric", "unknown metric"),
        ("metric=telephone&from=2026-03-01&to=2026-03-02&as_of=2026-03-02T12:00:00", "as_of", "with offset"),
        ("metric=telephone&from=2020-01-01&to=2026-03-02", "to", "at most"),
        ("from=2026-03-01&to=2026-03-02", "metric", "required"),
        ("metric=telephone&to=2026-03-02", "from", "required"),
        ("metric=telephone&from=2026-03-01&to=2026-03-02&format=xlsx", "format", "json or csv"),
    ],
)
def test_bad_query_is_422_naming_the_parameter(api, query, field, says):
    for path in (f"/api/v1/units/{VC01}/compliance", "/api/v1/compliance"):
        response = api.get(f"{path}?{query}")
        assert response.status_code == 422
        problem = next(p for p in response.json()["detail"] if p["loc"] == ["query", field])
        assert says in problem["msg"]


def test_bad_unit_in_path_is_422(api):
    response = api.get("/api/v1/units/VC01/compliance?metric=telephone&from=2026-03-01&to=2026-03-02")
    assert response.status_code == 422 and "HSA-id" in response.json()["detail"][0]["msg"]


def test_a_figure_without_to_runs_to_today_in_the_units_time_zone(api, monkeypatch):
    from vardkoll.server.api import figure_query

    # 23:30 UTC on 2 March: already 3 March in Stockholm, still 2 March in New York.
    monkeypatch.setattr(figure_query, "_now", lambda: datetime.fromisoformat("2026-03-02T23:30:00+00:00"))
    api.register(VC01, UPPSALA)
    api.register(VC10, "Region Demo", time_zone="America/New_York")
    posted = api.post("/api/v1/events", json=[event("after-midnight", VC01, at="2026-03-03T00:10:00+01:00")])
    assert posted.status_code == 200, posted.text
    query = {"metric": "telephone", "from": "2026-03-02"}
    implicit = api.get(f"/api/v1/units/{VC01}/compliance", params=query)
    assert implicit.status_code == 200, implicit.text
    assert implicit.json()["to"] == "2026-03-03" and implicit.json()["denominator"] == 1  # the call after Stockholm's midnight
    assert implicit.json() == api.get(f"/api/v1/units/{VC01}/compliance", params={**query, "to": "2026-03-03"}).json()
    assert api.get(f"/api/v1/units/{VC10}/compliance", params=query).json()["to"] == "2026-03-02"
    assert [f["to"] for f in api.get("/api/v1/compliance", params={**query, "region": UPPSALA}).json()] == ["2026-03-03"]


def test_without_to_units_in_several_time_zones_or_a_future_from_get_a_clear_reason(api, monkeypatch):
    from vardkoll.server.api import figure_query

    monkeypatch.setattr(figure_query, "_now", lambda: datetime.fromisoformat("2026-03-02T23:30:00+00:00"))
    api.register(VC01, UPPSALA)
    api.register(VC10, "Region Demo", time_zone="America/New_York")
    mixed = api.get("/api/v1/compliance", params={"metric": "telephone", "from": "2026-03-01"})
    assert mixed.status_code == 422 and "'to' is required here: the units are in 2 time zones" in mixed.text
    future = api.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": "2026-03-04"})
    assert future.status_code == 422 and "'to' (2026-03-03, today, the default) is before 'from' (2026-03-04)" in future.text
