"""The monthly national report: its figures are the API's and replay's, worked by hand (world.py)."""

from __future__ import annotations

import io
from datetime import date, datetime, timezone
from pathlib import Path

import orjson

from vardkoll.server.jobs.national_report import refresh_reports
from vardkoll.server.replay import replay_path

from .conftest import post_all
from .world import MONTH, UPPSALA, VC01, VC02, lines_by_key, month_events

NOW = datetime(2026, 4, 2, 6, 0, tzinfo=timezone.utc)  # March has ended
REPORT = f"/api/v1/reports/monthly/{UPPSALA}/{MONTH}"


def _report(api, variant: str = "internal", version: int | None = None) -> dict:
    params = {"variant": variant, **({"version": version} if version else {})}
    response = api.get(REPORT, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_report_equals_hand_worked_counts_the_api_and_replay(month_api, tmp_path: Path) -> None:
    report = _report(month_api)
    lines = lines_by_key(report)
    # Worked by hand in world.py.
    tel = lines[VC01, "telephone", "", ""]
    assert (tel["calls"], tel["same_day"], tel["share"]) == (30, 24, 0.8)
    expected = {
        ("doctor", "physical"): (22, 10, 18, 22),
        ("doctor", "phone"): (0, 0, 0, 0),
        ("doctor", "all"): (22, 10, 18, 22),
        ("other_licensed", "phone"): (5, 0, 5, 5),
        ("other_licensed", "video"): (1, 0, 0, 0),
        ("other_licensed", "all"): (6, 0, 5, 5),
        ("all", "physical"): (22, 10, 18, 22),
        ("all", "all"): (28, 10, 23, 27),
    }
    for (group, form), counts in expected.items():
        line = lines[VC01, "assessment", group, form]
        assert (line["completed"], line["wait_0"], line["wait_0_3"], line["wait_0_7"]) == counts, (group, form)
    whole = lines[VC01, "assessment", "all", "all"]
    assert (whole["excluded"], whole["share"]) == (1, 0.8214)
    fixed = lines[VC01, "fixed_doctor", "", ""]
    assert (fixed["listed"], fixed["named_doctor"], fixed["share"]) == (1200, 700, 0.5833)
    assert lines[VC02, "telephone", "", ""]["calls"] == 5
    assert report["as_known_at"] == "2026-03-31T23:59:59.999999+02:00"
    assert report["definition_versions"] == {"telephone": 1, "assessment": 1, "fixed_doctor": 1}

    # The API's figures for the month, and replay's over the same events.
    archive = tmp_path / "events.jsonl"
    archive.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in month_events()))
    replayed = {(f["unit"], f["metric"]): f for f in replay_path(archive, date(2026, 3, 1), date(2026, 3, 31))["results"]}
    pairs = {
        "telephone": ("calls", "same_day", "", ""),
        "assessment": ("completed", "wait_0_3", "all", "all"),
        "fixed_doctor": ("listed", "named_doctor", "", ""),
    }
    for unit in (VC01, VC02):
        for metric, (denominator, numerator, group, form) in pairs.items():
            api_figure = month_api.get(f"/api/v1/units/{unit}/compliance", params={"metric": metric, "from": "2026-03-01", "to": "2026-03-31"}).json()
            line = lines[unit, metric, group, form]
            for figure in (api_figure, replayed[unit, metric]):
                assert (line[numerator], line[denominator], line["share"]) == (figure["numerator"], figure["denominator"], figure["share"]), (unit, metric)
        assessed = replayed[unit, "assessment"]
        assert lines[unit, "assessment", "all", "all"]["excluded"] == assessed["details"]["excluded"]
        by_group = {"doctor": assessed["details"]["by_profession"].get("doctor", 0)}
        by_group["other_licensed"] = sum(assessed["details"]["by_profession"].values()) - by_group["doctor"]
        for group, count in by_group.items():
            assert lines[unit, "assessment", group, "all"]["completed"] == count


def test_public_hides_every_cell_under_20_and_the_internal_none(month_api) -> None:
    internal, public = _report(month_api, "internal"), _report(month_api, "public")
    assert all(line["suppressed"] == [] for line in internal["lines"])
    counts = ("calls", "same_day", "completed", "wait_0", "wait_0_3", "wait_0_7", "excluded", "listed", "named_doctor")
    small = 0
    for inside, outside in zip(internal["lines"], public["lines"]):
        for field in counts:
            if inside[field] is None:
                continue
            if inside[field] < 20:
                small += 1
                assert outside[field] is None and field in outside["suppressed"], (outside, field)
            else:
                assert outside[field] in (inside[field], None)
            if outside[field] is not None:
                assert outside[field] >= 20
        assert set(outside["suppressed"]) <= {*counts, "share"}
    assert small > 50  # the month has many small cells: the test would notice if none were hidden
    lines = lines_by_key(public)
    # The telephone line of VC01 is all shown; VC02's 5 calls are hidden, and so is its share.
    assert lines[VC01, "telephone", "", ""]["share"] == 0.8
    assert lines[VC02, "telephone", "", ""]["share"] is None
    # No sum the report states gives a hidden cell back: where a total is shown, never exactly one part is hidden.
    for unit in (VC01, VC02):
        assessment = {(g, f): line for (u, s, g, f), line in lines.items() if u == unit and s == "assessment"}
        groups, forms = ("doctor", "other_licensed"), sorted({f for _, f in assessment} - {"all"})
        sums = [((g, "all"), [(g, f) for f in forms]) for g in (*groups, "all")] + [(("all", f), [(g, f) for g in groups]) for f in (*forms, "all")]
        for total, parts in sums:
            for field in ("completed", "wait_0", "wait_0_3", "wait_0_7"):
                if assessment[total][field] is not None:
                    assert sum(assessment[p][field] is None for p in parts) != 1, (unit, total, field)
    # 6 other-licensed cases would follow from 28 − 22: the doctors' 22 is hidden as well.
    assert lines[VC01, "assessment", "all", "all"]["completed"] == 28
    assert lines[VC01, "assessment", "doctor", "all"]["completed"] is None


def test_csv_opens_in_swedish_excel_and_xlsx_reads_back(month_api) -> None:
    import csv

    from openpyxl import load_workbook

    response = month_api.get(REPORT, params={"variant": "public", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    # As Excel reads it: UTF-8 after the BOM, ';' between fields, ',' before decimals.
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8")), delimiter=";"))
    header = rows[0]
    assert header[:3] == ["HSA-id", "Enhet", "Ägarform"] and "Väntan 0–3 dagar" in header
    records = [dict(zip(header, row)) for row in rows[1:]]
    telephone = next(r for r in records if r["HSA-id"] == VC01 and r["Mått"] == "telefontillgänglighet")
    assert (telephone["Samtal"], telephone["Kontakt samma dag"], telephone["Andel"]) == ("30", "24", "0,8000")
    assert float(telephone["Andel"].replace(",", ".")) == 0.8
    vc02 = next(r for r in records if r["HSA-id"] == VC02 and r["Mått"] == "telefontillgänglighet")
    assert (vc02["Samtal"], vc02["Andel"]) == ("färre än 20", "färre än 20")
    assert telephone["Enhet"] == "Vårdcentral VC01" and telephone["Ägarform"] == "offentlig"

    xlsx = month_api.get(REPORT, params={"variant": "internal", "format": "xlsx"})
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book["Rapport"]
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    found = [dict(zip(header, row)) for row in values[1:]]
    whole = next(r for r in found if r["HSA-id"] == VC01 and r["Yrkesgrupp"] == "alla" and r["Kontaktform"] == "alla")
    assert (whole["Genomförda första kontakter"], whole["Väntan 0–3 dagar"], whole["Exkluderade"]) == (28, 23, 1)
    assert whole["Andel"] == 0.8214
    about = dict(book["Om rapporten"].iter_rows(values_only=True))
    assert about["Månad"] == MONTH and about["Version"] == 1 and about["Variant"].startswith("intern")


def test_a_late_event_makes_version_2_and_the_diff_shows_the_cell(month_api) -> None:
    services = month_api.services
    first = refresh_reports(services, NOW)
    assert first == {"reports_current": 0, "reports_made": 1, "reports_unchanged": 0}  # Uppsala's March: no other month or region has data
    again = refresh_reports(services, NOW)
    assert again["reports_made"] == 0 and again["reports_current"] == first["reports_made"] + first["reports_current"]
    # A collector was offline: a call of 31 March arrives in April, answered the same day.
    post_all(
        month_api,
        [
            {"v": 1, "id": "late-off", "type": "call.offered", "unit": VC01, "at": "2026-03-31T15:00:00+02:00", "call": "call-late-1"},
            {"v": 1, "id": "late-ans", "type": "call.answered", "unit": VC01, "at": "2026-03-31T15:05:00+02:00", "call": "call-late-1"},
        ],
    )
    later = refresh_reports(services, NOW)
    assert later["reports_made"] == 1  # Uppsala's March; Gävleborg's is current
    versions = month_api.get(f"{REPORT}/versions").json()
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["digest"] != versions[1]["digest"]
    assert lines_by_key(_report(month_api, version=2))[VC01, "telephone", "", ""]["calls"] == 31
    assert lines_by_key(_report(month_api, version=1))[VC01, "telephone", "", ""]["calls"] == 30
    diff = month_api.get(f"{REPORT}/diff", params={"from": 1, "to": 2, "variant": "internal"}).json()
    changed = {(c["unit"], c["section"], c["field"]): (c["before"], c["after"]) for c in diff["changes"]}
    assert changed == {(VC01, "telephone", "calls"): (30, 31), (VC01, "telephone", "same_day"): (24, 25), (VC01, "telephone", "share"): (0.8, 0.8065)}
    # An event after the month's end changes nothing in March's report.
    post_all(month_api, [{"v": 1, "id": "april-off", "type": "call.offered", "unit": VC01, "at": "2026-04-01T08:00:00+02:00", "call": "call-april"}])
    assert refresh_reports(services, NOW)["reports_made"] == 0
    assert len(month_api.get(f"{REPORT}/versions").json()) == 2


def test_who_may_have_which_report(month_api) -> None:
    from vardkoll.server.auth import Role

    analyst = month_api.token(Role.region_analyst, region=UPPSALA)
    other = month_api.token(Role.region_analyst, region="Region Gävleborg")
    manager = month_api.token(Role.clinic_manager, unit=VC01)
    assert month_api.get(REPORT, token=analyst, params={"variant": "internal"}).status_code == 200
    assert month_api.get(REPORT, token=other).status_code == 403
    assert month_api.get(REPORT, token=manager, params={"variant": "internal"}).status_code == 403
    assert month_api.get(REPORT, token=manager, params={"variant": "public"}).status_code == 200
    assert month_api.get(f"/api/v1/reports/monthly/{UPPSALA}/2099-01").status_code == 409  # not ended
    assert month_api.get(f"/api/v1/reports/monthly/{UPPSALA}/2026-13").status_code == 422
    assert month_api.get(REPORT, params={"version": 7}).status_code == 404
