"""Regionvy's region figure and its downloads (the national report, each unit's clinic profile, the
series) in real headless Chromium: the files arrive through Playwright's download API and parse."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

import httpx
import openpyxl

from vardkoll.server.auth import Role
from vardkoll.server.web.formatting import number, percent

from .test_browser import post_events, signed_in_page
from .world import ADMIN_TOKEN, PAST_DAY, UPPSALA, VC01, VC02, VC03, day_of_events, token

MARCH = {"fran": "2026-03-01", "till": "2026-03-31"}


def downloaded(page, selector: str) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.locator(selector).first.click()
    download = info.value
    assert download.failure() is None
    with open(download.path(), "rb") as file:
        return download.suggested_filename, file.read()


def test_regionvy_shows_the_region_figure_and_its_downloads_arrive_and_parse(chromium, live_server):
    base, services = live_server
    post_events(base, day_of_events(VC01, PAST_DAY) + day_of_events(VC02, PAST_DAY, seed=1, calls=12))
    context, page = signed_in_page(chromium, base, token(services, Role.region_analyst, region=UPPSALA))
    page.goto(f"{base}/region/{quote(UPPSALA)}?fran={MARCH['fran']}&till={MARCH['till']}")

    api = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for metric in ("telephone", "assessment", "fixed_doctor", "continuity"):
        whole = httpx.get(
            f"{base}/api/v1/regions/{quote(UPPSALA)}/compliance", params={"metric": metric, "from": "2026-03-01", "to": "2026-03-31"}, headers=api
        ).json()
        item = page.locator(f"#hela-regionen [data-region-metric='{metric}']")
        assert whole["denominator"] > 0, metric
        assert item.locator("[data-field='region-share']").inner_text() == percent(whole["share"]), metric
        assert f"({number(whole['numerator'])} av {number(whole['denominator'])})" in item.inner_text(), metric
    assert "1 enhet utan data" in page.locator("#hela-regionen [data-region-metric='telephone']").inner_text()  # VC03
    assert "Månadsrapporten för mars 2026" in page.locator("#nedladdningar").inner_text()

    name, body = downloaded(page, "a[data-download='rapport-1']")  # CSV, public
    assert name.endswith("-2026-03-v1-public.csv")
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Swedish Excel opens it as it is
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert len(rows[0]) > 5 and {VC01, VC02} <= {cell for row in rows for cell in row}
    assert any("färre än 20" in cell for row in rows for cell in row)

    name, body = downloaded(page, "a[data-download='rapport-4']")  # XLSX, internal
    assert name.endswith("-2026-03-v1-internal.xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    assert "Om rapporten" in workbook.sheetnames
    cells = {str(value) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True) for value in row if value is not None}
    assert VC01 in cells and UPPSALA in cells

    name, body = downloaded(page, f"tr[data-unit='{VC01}'] a[data-download='profil']")
    assert name == f"vardkoll-klinikprofil-{VC01}-2026-03.pdf"
    assert body.startswith(b"%PDF")

    name, body = downloaded(page, "a[data-download='serie-telephone']")
    assert name == "vardkoll-Region_Uppsala-telephone-month-2025-04-01-2026-03-31.csv"
    series = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert {row["unit"] for row in series} == {VC01, VC02, VC03} and len(series) == 3 * 12
    march = next(row for row in series if row["unit"] == VC01 and row["from"] == "2026-03-01")
    figure = httpx.get(f"{base}/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": "2026-03-01", "to": "2026-03-31"}, headers=api).json()
    assert (int(march["numerator"]), int(march["denominator"])) == (figure["numerator"], figure["denominator"])
    context.close()


def test_a_clinic_manager_gets_the_public_report_and_its_own_profile_but_no_region_sums(chromium, live_server):
    base, services = live_server
    post_events(base, day_of_events(VC01, PAST_DAY))
    context, page = signed_in_page(chromium, base, token(services, Role.clinic_manager, unit=VC01))
    page.goto(f"{base}/region/{quote(UPPSALA)}?fran={MARCH['fran']}&till={MARCH['till']}")
    assert page.locator("#hela-regionen").count() == 0
    links = page.locator("#nedladdningar a[data-download^='rapport-']")
    assert [links.nth(i).inner_text() for i in range(links.count())] == ["CSV, offentlig", "XLSX, offentlig"]
    name, body = downloaded(page, f"tr[data-unit='{VC01}'] a[data-download='profil']")
    assert body.startswith(b"%PDF") and VC01 in name
    context.close()
