"""The figure endpoints publish the typed figure in OpenAPI, every answer fits it, and the JSON stays the
same bytes as before it was typed (SPEC 4's surfaces must stay stable)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from .api_world import UPPSALA, VC01
from vardkoll.server.figures.model import Figure

TELEPHONE_DAY = Path(__file__).parents[1] / "fixtures" / "scenarios" / "telephone-day.jsonl"


def _events() -> list:
    items = []
    for line in TELEPHONE_DAY.read_text(encoding="utf-8").splitlines():
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return items


def test_the_figure_endpoints_publish_the_figure_schema(api):
    document = api.get("/openapi.json").json()
    one = document["paths"]["/api/v1/units/{unit}/compliance"]["get"]["responses"]["200"]["content"]
    many = document["paths"]["/api/v1/compliance"]["get"]["responses"]["200"]["content"]
    assert one["application/json"]["schema"] == {"$ref": "#/components/schemas/Figure"}
    assert many["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/Figure"}
    assert "text/csv" in one and "text/csv" in many
    figure = document["components"]["schemas"]["Figure"]
    assert list(figure["properties"]) == [
        "unit",
        "metric",
        "from",
        "to",
        "numerator",
        "denominator",
        "share",
        "target",
        "meets_target",
        "details",
        "definition_version",
        "data",
    ]


def test_every_answer_fits_the_schema_and_dumps_to_the_same_bytes(api):
    api.register(VC01, UPPSALA)
    assert api.post("/api/v1/events", json=_events()).status_code == 200
    for metric in ("assessment", "continuity", "fixed_doctor", "telephone"):
        response = api.get("/api/v1/compliance", params={"metric": metric, "from": "2026-03-02", "to": "2026-03-02", "region": UPPSALA})
        assert response.status_code == 200, response.text
        for answered in orjson.loads(response.content):
            typed = Figure.model_validate(answered)
            assert orjson.dumps(typed.model_dump(by_alias=True)) == orjson.dumps(answered)
        single = api.get(f"/api/v1/units/{VC01}/compliance", params={"metric": metric, "from": "2026-03-02", "to": "2026-03-02"})
        assert single.content.startswith(b'{"unit":"SE2321000016-VC01","metric":"' + metric.encode() + b'","from":"2026-03-02","to":"2026-03-02",')


def test_the_telephone_figure_is_byte_for_byte_the_spec_shape(api):
    """The hand-worked telephone day (tests/fixtures/scenarios/telephone-day.expected.json): of 8 offered calls,
    2 answered (one answer logged before its offer), 2 called back the same day (one unreached, which counts),
    2 still waiting for a callback at midnight, 1 abandoned, 1 answered after midnight (in no category):
    4/8 same day; two rejected calls make the strict share 4/10."""
    api.register(VC01, UPPSALA)
    api.post("/api/v1/events", json=_events())
    body = api.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": "2026-03-02", "to": "2026-03-02"}).content
    head = body[: body.index(b',"definition_version"')]
    assert head == (
        b'{"unit":"SE2321000016-VC01","metric":"telephone","from":"2026-03-02","to":"2026-03-02","numerator":4,'
        b'"denominator":8,"share":0.5,"target":0.9,"meets_target":false,"details":{"answered":2,"callback_same_day":2,'
        b'"callback_later":0,"callback_pending":2,"abandoned":1,"rejected":2,"strict_share":0.4,"small_n":true}'
    )
