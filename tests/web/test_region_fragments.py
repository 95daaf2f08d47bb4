"""Regionvy's rows are rendered once per content and kept (server/web/fragments.py): a kept row is
only ever reused where rendering it again would give the same HTML, and a changed figure shows."""

from __future__ import annotations

import itertools
import re
from html import unescape
from urllib.parse import quote

import orjson

from vardkoll.server.auth import Role
from vardkoll.server.metrics import METRICS
from vardkoll.server.storage.registry_tables import UnitRow
from vardkoll.server.web import fragments, pages
from vardkoll.server.web.charts import TrendPoint
from vardkoll.server.web.region_rows import ROWS, RegionRow

from .test_login_and_scope import login
from .world import ADMIN_TOKEN, PAST_DAY, UPPSALA, VC01, VC02, VC03, day_of_events, token

MACROS = pages._env.get_template("_region_rows.html").module
UNIT = UnitRow(unit=VC01, name="Vårdcentralen Årsta", region=UPPSALA)
OTHER_UNIT = UnitRow(unit=VC02, name="Vårdcentralen Östhammar", region=UPPSALA)


def figure(**changes) -> dict:
    base = {
        "unit": VC01,
        "share": 0.8,
        "meets_target": False,
        "target": 0.9,
        "numerator": 8,
        "denominator": 10,
        "details": {"small_n": True, "answered": 5},
        "definition_version": 1,
        "data": {"no_data": False, "last_event_at": "2026-03-02T10:00:00+00:00"},
    }
    for key, value in changes.items():
        if key in ("small_n", "answered"):
            base["details"] = {**base["details"], key: value}
        elif key in ("no_data", "last_event_at"):
            base["data"] = {**base["data"], key: value}
        else:
            base[key] = value
    return base


# One change of each field a row could show, and of some it does not show (those must not matter).
FIGURE_CHANGES = [
    {},
    {"share": 0.95, "meets_target": True},
    {"share": 0.81},
    {"meets_target": None},
    {"share": None, "numerator": 0, "denominator": 0},
    {"no_data": True},
    {"small_n": False},
    {"numerator": 9},
    {"denominator": 11},
    {"target": 0.8},
    {"target": None, "meets_target": None},
    {"answered": 6, "last_event_at": "2026-03-02T11:00:00+00:00", "definition_version": 2},
]
POINTS = [
    TrendPoint("mar", "mars 2026", 0.5, 5, 10, True, True),
    TrendPoint("mar", "mars 2026", 0.6, 6, 10, True, True),
    TrendPoint("mar", "mars 2026", None, 0, 0, False, True),
    TrendPoint("mar", "mars 2026", 0.5, 5, 10, False, False),
]


def without_chart_ids(html: str) -> str:
    return re.sub(r"sp-([td])\d+", r"sp-\1", str(html))  # each chart's ids are new, by design


def assert_equal_keys_render_alike(rendered: list[tuple[object, str]]) -> None:
    by_key: dict[object, set[str]] = {}
    for key, html in rendered:
        by_key.setdefault(key, set()).add(without_chart_ids(html))
    assert all(len(htmls) == 1 for htmls in by_key.values()), "a key that two different rows share"
    assert len(by_key) > 1


def test_two_table_rows_with_one_key_render_alike():
    rendered = []
    for unit, changes, other, href in itertools.product(
        (UNIT, OTHER_UNIT), FIGURE_CHANGES, ({}, {"numerator": 9}), ("/profil?month=2026-02", "/profil?month=2026-03")
    ):
        figures = {m: figure(**changes) for m in METRICS} | {"continuity": figure(**other)}
        row = RegionRow(unit, figures, figure(), [])
        rendered.append((fragments.table_row_key(row, href), MACROS.table_row(row, href)))
    assert_equal_keys_render_alike(rendered)
    assert len({key for key, _ in rendered}) == len({without_chart_ids(html) for _, html in rendered})


def test_two_small_multiples_with_one_key_render_alike():
    rendered = []
    for unit, changes, months, title in itertools.product(
        (UNIT, OTHER_UNIT), FIGURE_CHANGES, ([POINTS[0]], [POINTS[1]], [POINTS[2]], [POINTS[3]], POINTS[:2]), ("Telefon per månad", "3-dagars per månad")
    ):
        row = RegionRow(unit, {}, figure(**changes), months)
        rendered.append((fragments.multiple_key(row, title), MACROS.multiple(row, title)))
    assert_equal_keys_render_alike(rendered)


def test_the_cache_keeps_at_most_its_size_and_the_latest_used():
    cache = fragments.FragmentCache(max_entries=2)
    assert cache.get_or_render("a", lambda: "<i>a</i>") == "<i>a</i>"
    cache.get_or_render("b", lambda: "b")
    cache.get_or_render("a", lambda: "not rendered again")
    cache.get_or_render("c", lambda: "c")  # "b" was used least recently
    assert cache.get_or_render("a", lambda: "again") == "<i>a</i>"
    assert cache.get_or_render("b", lambda: "b, rendered again") == "b, rendered again"
    assert (cache.hits, cache.misses) == (2, 4)


def _row(html: str, unit: str) -> str:
    row = html[html.index(f'<tr data-unit="{unit}"') :]
    return row[: row.index("</tr>")]


def test_a_units_new_figure_shows_in_its_row_while_the_other_rows_are_reused(web):
    client, services = web
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert not client.post("/api/v1/events", content=orjson.dumps(day_of_events(VC01, PAST_DAY)), headers=admin).json()["rejected"]
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    page = f"/region/{quote(UPPSALA)}"
    first = client.get(page, params={"till": PAST_DAY.isoformat()}).text
    assert "ingen data" in _row(first, VC03)

    assert not client.post("/api/v1/events", content=orjson.dumps(day_of_events(VC03, PAST_DAY, seed=3, calls=12)), headers=admin).json()["rejected"]
    reused, built = ROWS.reused, ROWS.built
    second = client.get(page, params={"till": PAST_DAY.isoformat()}).text
    assert ROWS.reused - reused == len(services.units.rows_of_region(UPPSALA)) - 1, "the unchanged units' rows are reused"
    assert ROWS.built - built == 1, "the changed unit's row is built again"
    assert _row(second, VC01) == _row(first, VC01)
    api = client.get("/api/v1/units/" + VC03 + "/compliance", params={"metric": "telephone", "from": "2026-03-01", "to": PAST_DAY.isoformat()}).json()
    assert api["denominator"] > 0
    cell = _row(second, VC03)
    cell = cell[cell.index('data-metric="telephone"') :]
    assert f"{api['numerator']} av {api['denominator']}" in unescape(cell[: cell.index("</td>")])
