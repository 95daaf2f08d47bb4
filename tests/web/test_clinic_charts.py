"""Klinikvy's charts carry the API's numbers: the hourly curve adds up to the day's telephone figure,
and every trend point is the API's figure for that week or month."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from html import unescape

import orjson

from vardkoll.server.auth import Role

from .test_login_and_scope import login
from .world import ADMIN_TOKEN, PAST_DAY, VC01, day_of_events, token

CELL = re.compile(r'<td data-field="(?P<name>\w+)">(?P<value>\d+)</td>')


def hour_totals(html: str) -> Counter:
    start = html.index('id="timtabell"')
    table = html[start : html.index("</tbody>", start)]
    totals: Counter = Counter()
    rows = 0
    for row in table.split("<tr")[2:]:
        rows += 1
        for cell in CELL.finditer(row):
            totals[cell["name"]] += int(cell["value"])
    totals["rows"] = rows
    return totals


def test_the_hourly_curve_adds_up_to_the_apis_day_figure(web):
    client, services = web
    posted = client.post("/api/v1/events", content=orjson.dumps(day_of_events(VC01, PAST_DAY)), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert posted.status_code == 200
    login(client, token(services, Role.clinic_manager, unit=VC01))
    html = client.get(f"/enhet/{VC01}", params={"dag": PAST_DAY.isoformat()}).text
    api = client.get(f"/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": PAST_DAY.isoformat(), "to": PAST_DAY.isoformat()}).json()
    totals = hour_totals(html)
    assert totals["rows"] == 24  # 2 March 2026: no clock change
    assert totals["offered"] == api["denominator"] and totals["contact"] == api["numerator"]
    assert totals["pending"] == api["details"]["callback_pending"] and totals["abandoned"] == api["details"]["abandoned"]
    assert totals["rejected"] == api["details"]["rejected"]
    # By hand from world.day_of_events: 40 calls, i % 10 in 0–5 answered, 6–7 called back the same day,
    # 8 waiting for a callback, 9 abandoned; 3 rejected.
    assert (totals["offered"], totals["contact"], totals["pending"], totals["abandoned"], totals["rejected"]) == (40, 32, 4, 4, 3)
    assert 'class="chart hourly" role="img"' in html and "<desc" in html


def test_a_unit_without_data_shows_no_data_instead_of_an_hourly_curve(web):
    client, services = web
    login(client, token(services, Role.clinic_manager, unit=VC01))
    html = client.get(f"/enhet/{VC01}").text
    section = html[html.index('id="timmar"') :]
    section = section[: section.index("</section>")]
    assert "ingen data" in section and "<svg" not in section


TREND_ROW = re.compile(r'<tr data-from="(?P<start>[\d-]+)" data-to="(?P<end>[\d-]+)">.*?data-field="ratio">(?P<ratio>[^<]*)<', re.S)


def test_every_trend_point_is_the_apis_figure_for_that_week_or_month(web):
    client, services = web
    events = day_of_events(VC01, PAST_DAY) + day_of_events(VC01, PAST_DAY.replace(day=1) - timedelta(days=3), seed=2)
    assert client.post("/api/v1/events", content=orjson.dumps(events), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    login(client, token(services, Role.clinic_manager, unit=VC01))
    html = client.get(f"/enhet/{VC01}", params={"dag": PAST_DAY.isoformat()}).text
    checked = 0
    for metric in ("telephone", "assessment", "fixed_doctor", "continuity"):
        start = html.index(f'<div class="trend-row" data-metric="{metric}">')
        block = html[start : html.index("</details>", start)]
        rows = TREND_ROW.findall(block)
        assert len(rows) == 24, metric  # 12 weeks and 12 months
        for period_start, period_end, ratio in rows:
            api = client.get(f"/api/v1/units/{VC01}/compliance", params={"metric": metric, "from": period_start, "to": period_end}).json()
            assert unescape(ratio) == f"{api['numerator']:,} av {api['denominator']:,}".replace(",", "\u00a0"), (metric, period_start)
            checked += api["denominator"] > 0
    # The current week (2 March, a Monday) and month, and the week and month of 27 February have data.
    assert ("2026-03-02", "2026-03-02") in {(s, e) for s, e, _ in TREND_ROW.findall(html)}
    assert checked >= 4 * 3


def test_trend_gaps_are_not_drawn_as_zero(web):
    client, services = web
    events = day_of_events(VC01, PAST_DAY)
    assert client.post("/api/v1/events", content=orjson.dumps(events), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    login(client, token(services, Role.clinic_manager, unit=VC01))
    html = client.get(f"/enhet/{VC01}", params={"dag": PAST_DAY.isoformat()}).text
    start = html.index('<div class="trend-row" data-metric="telephone">')
    block = html[start : html.index("</details>", start)]
    # Only the last week and month have calls: one point each, no line joining them to zeros.
    assert block.count('class="point') == 2 and "<polyline" not in block
    assert "vecka 9 2026: ingen data" in block and "vecka 10 2026 (hittills): 80,0\u00a0%" in block


def test_the_hour_table_tells_the_two_two_oclock_hours_of_the_autumn_dst_day_apart():
    from datetime import date

    from vardkoll.server.metrics import UnitConfig
    from vardkoll.server.metrics.call_hours import CallHour, hours_of
    from vardkoll.server.web.charts import hour_label, hourly_calls

    hours = [CallHour(start) for start in hours_of(date(2026, 10, 25), UnitConfig())]
    labels = [hour_label(h, hours) for h in hours]
    assert labels[1:5] == ["01–02", "02–03 sommartid", "02–03 normaltid", "03–04"] and len(labels) == 25
    spring = [CallHour(start) for start in hours_of(date(2026, 3, 29), UnitConfig())]
    assert [hour_label(h, spring) for h in spring[:3]] == ["00–01", "01–03", "03–04"]  # the clock skips 02
    assert hourly_calls(hours, None, "25 okt 2026").count("<text") >= 25 // 2  # one label every other hour at least


def trend_ratios(html: str, metric: str) -> dict[tuple[str, str], str]:
    start = html.index(f'<div class="trend-row" data-metric="{metric}">')
    block = html[start : html.index("</details>", start)]
    return {(s, e): unescape(ratio) for s, e, ratio in TREND_ROW.findall(block)}


def test_a_new_event_redraws_the_running_week_and_month_and_recomputes_no_settled_period(web):
    client, services = web
    day = PAST_DAY + timedelta(days=2)  # Wednesday 4 March 2026: the week (2–4 March) is not the day
    api = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    events = day_of_events(VC01, day) + day_of_events(VC01, date(2026, 2, 10), seed=2)
    assert client.post("/api/v1/events", content=orjson.dumps(events), headers=api).status_code == 200
    login(client, token(services, Role.clinic_manager, unit=VC01))
    fragment = f"/enhet/{VC01}/innehall"
    before = trend_ratios(client.get(fragment, params={"dag": day.isoformat()}).text, "telephone")

    late_call = [
        {"v": 1, "id": f"trend-live-{n}", "type": kind, "unit": VC01, "at": "2026-03-04T12:00:00+01:00", "call": "call-trendlive1"}
        for n, kind in enumerate(("call.offered", "call.answered"))
    ]
    assert client.post("/api/v1/events", content=orjson.dumps(late_call), headers=api).status_code == 200
    computed = []
    cache = services.figures.cache
    put = cache.put
    cache.put = lambda key, *rest: (computed.append(key), put(key, *rest))[1]
    after = trend_ratios(client.get(fragment, params={"dag": day.isoformat()}).text, "telephone")

    # Only what reaches 4 March was computed again: the day, the running week and the running month.
    assert {(start, end) for _, _, start, end, _ in computed} == {(day, day), (date(2026, 3, 2), day), (date(2026, 3, 1), day)}
    week, month = ("2026-03-02", "2026-03-04"), ("2026-03-01", "2026-03-04")
    # By hand: 40 calls, 32 with contact the same day (see above), and now one more, answered.
    assert (before[week], after[week]) == ("32 av 40", "33 av 41") and (before[month], after[month]) == ("32 av 40", "33 av 41")
    assert {k: v for k, v in after.items() if k not in (week, month)} == {k: v for k, v in before.items() if k not in (week, month)}
    assert after[("2026-02-01", "2026-02-28")] == "32 av 40"  # a settled month, from the cache
