"""GET /api/v1/units/{unit}/events: the unit's stored events as JSON lines; `vardkoll replay` over them
gives the API's figures (SPEC 4), within the reader's scope."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import orjson
import pytest

from vardkoll.server.auth import Role
from vardkoll.server.metrics import METRICS
from vardkoll.server.replay.engine import replay_stream

from .api_world import UPPSALA, VC01, VC02

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
FIGURE_KEYS = ("numerator", "denominator", "share", "target", "meets_target", "details")


@pytest.fixture
def region(api):
    api.register(VC01, UPPSALA)
    api.register(VC02, UPPSALA)
    events = [orjson.loads(line) for name in ("telephone-day", "assessment-week", "fixed-doctor-month", "dst")
              for line in (SCENARIOS / f"{name}.jsonl").read_bytes().splitlines() if line.strip()]
    posted = api.post("/api/v1/events", content=orjson.dumps(events))
    assert posted.status_code == 200 and not posted.json()["rejected"], posted.text
    return api


def test_replaying_the_units_events_gives_the_apis_figures(region):
    api = region
    period = {"from": "2026-03-01", "to": "2026-03-31"}
    analyst = api.token(Role.region_analyst, region=UPPSALA)
    response = api.get(f"/api/v1/units/{VC01}/events", token=analyst, params=period)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.content.splitlines()
    assert len(lines) == 52 and all(orjson.loads(line)["unit"] == VC01 for line in lines)  # 20 + 21 + 11, every VC01 event of March
    replayed = replay_stream(io.BytesIO(response.content), date(2026, 3, 1), date(2026, 3, 31), workers=0)
    assert replayed["rejected"] == [] and replayed["duplicates"] == 0
    by_metric = {figure["metric"]: figure for figure in replayed["results"]}
    for metric in METRICS:
        figure = api.get(f"/api/v1/units/{VC01}/compliance", token=analyst, params={"metric": metric, **period}).json()
        assert {k: figure[k] for k in FIGURE_KEYS} == {k: by_metric[metric][k] for k in FIGURE_KEYS}, metric
    assert (by_metric["telephone"]["numerator"], by_metric["telephone"]["denominator"]) == (4, 8)  # docs/metrics.md section 2


def test_the_period_is_the_units_local_dates(region):
    day = region.get(f"/api/v1/units/{VC01}/events", params={"from": "2026-03-02", "to": "2026-03-02"}).content.splitlines()
    ats = sorted(orjson.loads(line)["at"] for line in day)
    # c-utc-late's answer at 2026-03-02T23:10:00Z is 00:10 on 3 March in Stockholm: not in the day.
    assert "2026-03-02T23:10:00Z" not in ats and "2026-03-02T22:30:00Z" in ats


def test_only_readers_of_the_units_figures_get_its_events_and_a_bad_period_says_what_to_send(region):
    api = region
    other_unit = api.token(Role.clinic_manager, unit=VC02)
    installer = api.token(Role.installer, region=UPPSALA)
    params = {"from": "2026-03-01", "to": "2026-03-31"}
    assert api.get(f"/api/v1/units/{VC01}/events", token=other_unit, params=params).status_code == 403
    assert api.get(f"/api/v1/units/{VC01}/events", token=installer, params=params).status_code == 403
    assert api.get(f"/api/v1/units/{VC01}/events", token=None, params=params).status_code == 401
    missing = api.get(f"/api/v1/units/{VC01}/events", params={"from": "2026-03-01"})
    assert missing.status_code == 422 and "'to' is required" in missing.text
