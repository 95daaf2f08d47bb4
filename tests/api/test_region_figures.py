"""The whole region's figure sums its units' numerators and denominators (not a mean of their shares),
splits them by ownership, and stands beside the region's target and comparison value (issue 15)."""

from __future__ import annotations

from .api_world import GAVLEBORG, UPPSALA, VC01, VC02, event
from vardkoll.server.figures.model import RegionFigure

VC03 = "SE2321000016-VC03"
DAY = {"metric": "telephone", "from": "2026-03-02", "to": "2026-03-02"}


def _region(api):
    api.register(VC01, UPPSALA, ownership="offentlig", municipality_code="0380", listed_patients=9000)
    api.register(VC02, UPPSALA, ownership="privat")
    api.register(VC03, UPPSALA)  # ownership not given, and no data
    sent = []
    for unit, offered, answered in ((VC01, 3, 2), (VC02, 2, 2)):
        for n in range(offered):
            call = f"call-{unit[-4:]}-{n}"
            sent.append(event(f"{unit[-4:]}-o{n}", unit, call=call, at=f"2026-03-02T09:0{n}:00+01:00"))
            if n < answered:
                sent.append(event(f"{unit[-4:]}-a{n}", unit, type="call.answered", call=call, at=f"2026-03-02T09:0{n}:30+01:00"))
    assert api.post("/api/v1/events", json=sent).status_code == 200


def test_the_region_is_the_sum_of_its_units_by_ownership(api):
    """VC01 (offentlig): 2 of 3 same day; VC02 (privat): 2 of 2; VC03: nothing. The region: 4 of 5 = 0.8,
    where a mean of the two shares would say 0.8333."""
    _region(api)
    response = api.get(f"/api/v1/regions/{UPPSALA}/compliance", params=DAY)
    assert response.status_code == 200, response.text
    figure = response.json()
    RegionFigure.model_validate(figure)
    assert (figure["numerator"], figure["denominator"], figure["share"]) == (4, 5, 0.8)
    assert (figure["units"], figure["units_without_data"], figure["small_n"]) == (3, 1, True)
    assert figure["by_ownership"] == [
        {"ownership": "offentlig", "units": 1, "numerator": 2, "denominator": 3, "share": 0.6667},
        {"ownership": "okänd", "units": 1, "numerator": 0, "denominator": 0, "share": None},
        {"ownership": "privat", "units": 1, "numerator": 2, "denominator": 2, "share": 1.0},
    ]
    assert (figure["target"], figure["meets_target"], figure["comparison"]) == (None, None, None)
    unit = api.get(f"/api/v1/units/{VC01}").json()
    assert (unit["ownership"], unit["municipality_code"], unit["listed_patients"]) == ("offentlig", "0380", 9000)


def test_the_region_target_and_the_national_figure_stand_beside_it(api):
    _region(api)
    for spec in (
        {"metric": "telephone", "kind": "target", "label": "Regionens mål", "value": 0.85, "valid_from": "2026-01-01"},
        {"metric": "telephone", "kind": "comparison", "label": "Riket", "value": 0.89, "valid_from": "2026-01-01"},
        {"metric": "telephone", "kind": "comparison", "label": "Riket 2025", "value": 0.5, "valid_from": "2025-01-01", "valid_to": "2025-12-31"},
    ):
        assert api.post(f"/api/v1/regions/{UPPSALA}/benchmarks", json=spec).status_code == 201
    figure = api.get(f"/api/v1/regions/{UPPSALA}/compliance", params=DAY).json()
    assert (figure["target"], figure["meets_target"]) == (0.85, False)  # 0.8 < 0.85
    assert figure["comparison"] == {"label": "Riket", "value": 0.89}
    assert len(api.get(f"/api/v1/regions/{UPPSALA}/benchmarks").json()) == 3
    backwards = api.post(
        f"/api/v1/regions/{UPPSALA}/benchmarks",
        json={"metric": "telephone", "kind": "target", "label": "x", "value": 0.9, "valid_from": "2026-02-01", "valid_to": "2026-01-01"},
    )
    assert backwards.status_code == 422


def test_of_two_benchmarks_valid_on_the_last_day_the_later_start_wins(api):
    """A target from 2025 that never ended and a newer one from 1 March 2026: 2 March takes the newer (0.75,
    met by 0.8), 28 February the older (0.85, not met: the region has no events then, so no share at all);
    the comparison value, another kind, is read beside them; a target of another metric is not taken."""
    _region(api)
    for spec in (
        {"metric": "telephone", "kind": "target", "label": "Mål 2025", "value": 0.85, "valid_from": "2025-01-01"},
        {"metric": "telephone", "kind": "target", "label": "Mål från mars", "value": 0.75, "valid_from": "2026-03-01"},
        {"metric": "telephone", "kind": "comparison", "label": "Riket", "value": 0.89, "valid_from": "2026-01-01"},
        {"metric": "assessment", "kind": "target", "label": "Bedömning", "value": 0.5, "valid_from": "2026-03-02"},
    ):
        assert api.post(f"/api/v1/regions/{UPPSALA}/benchmarks", json=spec).status_code == 201
    figure = api.get(f"/api/v1/regions/{UPPSALA}/compliance", params=DAY).json()
    assert (figure["target"], figure["meets_target"], figure["comparison"]) == (0.75, True, {"label": "Riket", "value": 0.89})
    earlier = api.get(f"/api/v1/regions/{UPPSALA}/compliance", params={**DAY, "from": "2026-02-28", "to": "2026-02-28"}).json()
    assert (earlier["target"], earlier["share"], earlier["comparison"]) == (0.85, None, {"label": "Riket", "value": 0.89})


def test_only_those_who_see_the_whole_region_get_its_figure(api):
    _region(api)
    assert api.get(f"/api/v1/regions/{UPPSALA}/compliance", token=api.token("region_analyst", region=UPPSALA), params=DAY).status_code == 200
    assert api.get(f"/api/v1/regions/{UPPSALA}/compliance", token=api.token("region_analyst", region=GAVLEBORG), params=DAY).status_code == 403
    assert api.get(f"/api/v1/regions/{UPPSALA}/compliance", token=api.token("clinic_manager", unit=VC01), params=DAY).status_code == 403
    assert api.get(f"/api/v1/regions/{GAVLEBORG}/compliance", params=DAY).status_code == 404
    assert (
        api.post(
            f"/api/v1/regions/{UPPSALA}/benchmarks",
            token=api.token("region_analyst", region=UPPSALA),
            json={"metric": "telephone", "kind": "target", "label": "x", "value": 0.9, "valid_from": "2026-01-01"},
        ).status_code
        == 403
    )
