"""Regionvy: the whole-year count, filters and small multiples carry the API's numbers."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from urllib.parse import quote

import orjson

from vardkoll.server.auth import Role

from .test_login_and_scope import login
from .world import ADMIN_TOKEN, GAVLEBORG, PAST_DAY, UPPSALA, VC01, VC02, VC03, day_of_events, token

YEAR = {"from": "2026-01-01", "to": PAST_DAY.isoformat()}


def region_page(client, **params) -> str:
    response = client.get(f"/region/{quote(UPPSALA)}", params={"till": PAST_DAY.isoformat(), **params})
    assert response.status_code == 200, response.text
    return response.text


def posted(client) -> None:
    events = day_of_events(VC01, PAST_DAY) + day_of_events(VC02, PAST_DAY, seed=1, calls=12)
    response = client.post("/api/v1/events", content=orjson.dumps(events), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200 and not response.json()["rejected"]


def test_whole_year_at_target_counts_the_units_whose_year_to_date_figure_meets_it(web):
    client, services = web
    posted(client)
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    html = region_page(client, matt="fixed_doctor")
    # By hand: the listing snapshots say 6 390 of 11 840 (54,0 %, under 55 %) at VC01 and 6 790 of
    # 11 840 (57,35 %) at VC02; VC03 has no data. So one of three units.
    assert "1 av 3 enheter klarar målet för hela året</strong>; 1 utan data" in html
    api = client.get("/api/v1/compliance", params={"metric": "fixed_doctor", **YEAR, "region": UPPSALA}).json()
    assert sum(1 for f in api if f["meets_target"]) == 1 and len(api) == 3
    assert "1 jan 2026 – 2 mar 2026" in html


def test_filters_work_without_javascript_through_the_query(web):
    client, services = web
    posted(client)
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    missing = region_page(client, matt="fixed_doctor", under="1")
    table = missing[missing.index('id="enheter"') : missing.index("</table>", missing.index('id="enheter"'))]
    assert f'data-unit="{VC01}"' in table and f'data-unit="{VC03}"' in table and f'data-unit="{VC02}"' not in table
    assert "1 av 3 enheter klarar målet" in missing  # the headline is about the whole region
    found = region_page(client, sok="ÖSTH")
    table = found[found.index('id="enheter"') : found.index("</table>", found.index('id="enheter"'))]
    assert [u for u in (VC01, VC02, VC03) if f'data-unit="{u}"' in table] == [VC02]
    assert 'id="matt"' in found and 'name="under"' in found and "Ta bort filtren" in found
    assert "Inga enheter matchar filtren" in region_page(client, sok="finns-inte")


def test_each_small_chart_holds_the_apis_monthly_figures(web):
    client, services = web
    posted(client)
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    html = region_page(client, matt="fixed_doctor")
    march = client.get(f"/api/v1/units/{VC02}/compliance", params={"metric": "fixed_doctor", "from": "2026-03-01", "to": PAST_DAY.isoformat()}).json()
    assert march["share"] == 0.5735  # 6 790 / 11 840
    item = html[html.index(f'<li data-unit="{VC02}"') :]
    item = item[: item.index("</li>")]
    # The API's share 0,5735 shown as a percentage rounded half up; no data before March is a gap.
    assert "mars 2026: 57,4\u00a0%" in item and "februari 2026: ingen data" in item and "april 2025: ingen data" in item
    assert '<svg viewBox="0 0 132 40" class="chart spark" role="img"' in item


def test_whole_year_counts_whole_days_only():
    from datetime import date

    from vardkoll.server.metrics import Period
    from vardkoll.server.web.region_view import whole_year

    today = date(2026, 11, 23)
    assert whole_year(today, today) == Period(date(2026, 1, 1), date(2026, 11, 22))  # through yesterday
    assert whole_year(date(2026, 3, 2), today) == Period(date(2026, 1, 1), date(2026, 3, 2))  # a period in the past
    assert whole_year(date(2027, 1, 1), date(2027, 1, 1)) == Period(date(2026, 1, 1), date(2026, 12, 31))  # New Year's Day


def table_units(html: str) -> list[str]:
    table = html[html.index('id="enheter"') : html.index("</table>", html.index('id="enheter"'))]
    return re.findall(r'<tr data-unit="([^"]+)"', table)


def export_link(html: str, metric: str) -> str:
    return unescape(re.search(rf'<a href="([^"]+)" download data-metric="{metric}"', html)[1])


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_export_holds_exactly_the_rows_the_filtered_table_shows(web):
    client, services = web
    posted(client)
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    period = {"fran": "2026-03-01", "till": PAST_DAY.isoformat()}
    # By hand (see above): in fixed_doctor VC01 is under target (54,0 %) and VC03 has no data, VC02 meets it.
    html = region_page(client, **period, matt="fixed_doctor", under="1", sortera="telephone", ordning="fallande")
    shown = table_units(html)
    assert sorted(shown) == [VC01, VC03] and shown[-1] == VC03  # no data sorts last
    api_period = {"from": "2026-03-01", "to": PAST_DAY.isoformat(), "region": UPPSALA, "format": "csv"}
    for metric in ("telephone", "assessment", "fixed_doctor", "continuity"):
        response = client.get(export_link(html, metric))
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert "urval" in response.headers["content-disposition"]
        exported = csv_rows(response.text)
        assert [row["unit"] for row in exported] == shown, metric  # the table's rows, in its order
        api = {row["unit"]: row for row in csv_rows(client.get("/api/v1/compliance", params={**api_period, "metric": metric}).text)}
        assert exported == [api[unit] for unit in shown], metric  # the API's own CSV rows, column for column
        assert {row["from"] for row in exported} == {"2026-03-01"}


def test_the_csv_export_follows_the_search_and_the_period(web):
    client, services = web
    posted(client)
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    html = region_page(client, fran=PAST_DAY.isoformat(), sok="östh")
    exported = csv_rows(client.get(export_link(html, "telephone")).text)
    assert [(r["unit"], r["from"], r["to"]) for r in exported] == [(VC02, PAST_DAY.isoformat(), PAST_DAY.isoformat())]
    # By hand: day_of_events with seed 1 and 12 calls sorts call i by (i + 1) % 10: i = 0–4 and 9–11
    # answered (8), 5–6 called back the same day (2), 7 waiting, 8 abandoned: 10 of 12.
    assert (exported[0]["numerator"], exported[0]["denominator"]) == ("10", "12")
    whole = region_page(client, fran=PAST_DAY.isoformat())
    assert (
        [r["unit"] for r in csv_rows(client.get(export_link(whole, "telephone")).text)] == table_units(whole) == [VC03, VC01, VC02]
    )  # Hälsocentralen Ä…, Vårdcentralen Å…, Ö…


def test_the_csv_export_keeps_the_pages_scope(web):
    client, services = web
    posted(client)
    login(client, token(services, Role.clinic_manager, unit=VC01))
    html = region_page(client)
    assert table_units(html) == [VC01]
    assert [r["unit"] for r in csv_rows(client.get(export_link(html, "assessment")).text)] == [VC01]
    login(client, token(services, Role.region_analyst, region=GAVLEBORG))
    assert client.get(f"/region/{quote(UPPSALA)}/csv/telephone").status_code == 403
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    assert client.get(f"/region/{quote(UPPSALA)}/csv/nonsense").status_code == 404


def test_klinikvy_links_to_the_profile_of_the_month_of_the_day_shown(web):
    client, services = web
    posted(client)
    login(client, token(services, Role.clinic_manager, unit=VC01))
    html = client.get(f"/enhet/{VC01}", params={"dag": PAST_DAY.isoformat()}).text
    assert f'href="/api/v1/units/{VC01}/profile.pdf?month=2026-03"' in html and "Klinikprofil mars 2026 (PDF)" in html
    response = client.get(f"/api/v1/units/{VC01}/profile.pdf", params={"month": "2026-03"})  # the session cookie suffices
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


def test_regionvy_offers_the_month_before_when_the_period_has_not_ended(web):
    client, services = web
    login(client, token(services, Role.region_analyst, region=UPPSALA))
    html = unescape(client.get(f"/region/{quote(UPPSALA)}", params={"fran": "2999-01-01", "till": "2999-01-31"}).text)
    assert "Månadsrapporten för december 2998" in html
    assert f"/api/v1/reports/monthly/{quote(UPPSALA, safe='')}/2998-12?variant=internal&format=xlsx" in html
