"""The dashboard in real headless Chromium (Debian's, driven by Playwright) against the whole server
and a real Mosquitto: live updates, scope, the API's numbers, and the screenshots of docs/screenshots/
(written there by `./dev screenshots`; a plain test run writes them to a temporary folder)."""

from __future__ import annotations

import io
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

try:
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture skips (or fails on CI) with the reason
    expect = None

from vardkoll.protocol.topics import events_topic
from vardkoll.server.auth import Role

from .world import ADMIN_TOKEN, PAST_DAY, STOCKHOLM, UPPSALA, VC01, VC02, VC03, day_of_events, page_fields, token

DESKTOP = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}


def post_events(base: str, events: list[dict]) -> None:
    response = httpx.post(f"{base}/api/v1/events", content=orjson.dumps(events), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    assert response.status_code == 200 and not response.json()["rejected"], response.text


def signed_in_page(chromium, base: str, secret: str, viewport=DESKTOP):
    context = chromium.new_context(viewport=viewport, locale="sv-SE", timezone_id="Europe/Stockholm")
    page = context.new_page()
    page.goto(f"{base}/logga-in")
    page.fill("#token", secret)
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    return context, page


def test_an_event_over_mqtt_changes_the_open_clinic_page_and_its_running_trends_within_two_seconds(chromium, live_server, mosquitto):
    base, services = live_server
    context, page = signed_in_page(chromium, base, token(services, Role.clinic_manager, unit=VC01))
    assert page.url.endswith(f"/enhet/{VC01}")
    ratio = page.locator("#telefon [data-field=ratio]")
    assert ratio.inner_text() == "0 av 0 samtal"
    assert page.locator("#telefon [data-field=share]").inner_text() == "ingen data"
    month_point = page.locator(".trend-row[data-metric=telephone] table[data-series=months] tbody tr:last-child")
    week_point = page.locator(".trend-row[data-metric=telephone] table[data-series=weeks] tbody tr:last-child")
    assert month_point.locator("[data-field=ratio]").text_content() == "0 av 0"
    page.locator("#trendtabell-telephone summary").click()  # someone reading the trend table
    expect(page.locator("#live-status")).to_contain_text("Uppdaterad", timeout=10_000)  # the live stream is open

    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    events = [
        {"v": 1, "id": "web-live-1", "type": "call.offered", "unit": VC01, "at": now.isoformat(), "call": "call-weblive1"},
        {"v": 1, "id": "web-live-2", "type": "call.answered", "unit": VC01, "at": now.isoformat(), "call": "call-weblive1"},
    ]
    started = time.monotonic()
    publisher.publish(events_topic(VC01, "pi-reception"), orjson.dumps({"device": "pi-reception", "events": events}), qos=1).wait_for_publish(5)
    expect(page.locator("#telefon [data-field=ratio]")).to_have_text("1 av 1 samtal", timeout=2_000)
    # The running month's and week's trend points follow in the same swap.
    expect(month_point.locator("[data-field=ratio]")).to_have_text("1 av 1", timeout=max(0.0, 2.0 - (time.monotonic() - started)) * 1000)
    elapsed = time.monotonic() - started
    assert week_point.locator("[data-field=ratio]").text_content() == "1 av 1"
    assert "100,0\u00a0%" in month_point.inner_text()
    assert page.locator("#trendtabell-telephone").get_attribute("open") is not None  # the opened table stayed open
    publisher.loop_stop()
    publisher.disconnect()
    assert page.locator("#telefon [data-field=share]").inner_text() == "100,0\u00a0%"
    assert page.locator("#telefon [data-field=answered]").inner_text() == "1"
    assert elapsed < 2.0, f"the page took {elapsed:.2f} s"
    context.close()


def test_a_clinic_manager_cannot_open_another_unit_in_the_browser(chromium, live_server):
    base, services = live_server
    context, page = signed_in_page(chromium, base, token(services, Role.clinic_manager, unit=VC01))
    response = page.goto(f"{base}/enhet/{VC02}")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "Ingen behörighet"
    assert "Vårdcentralen Östhammar" not in page.content()
    context.close()


def test_the_pages_show_the_apis_numbers(chromium, live_server):
    base, services = live_server
    post_events(base, day_of_events(VC01, PAST_DAY) + day_of_events(VC02, PAST_DAY, seed=1, calls=12))
    context, page = signed_in_page(chromium, base, token(services, Role.region_analyst, region=UPPSALA))
    api = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    day = PAST_DAY.isoformat()

    page.goto(f"{base}/enhet/{VC01}?dag={day}")
    fields = page_fields(page.content(), "telefon")
    telephone = httpx.get(f"{base}/api/v1/units/{VC01}/compliance", params={"metric": "telephone", "from": day, "to": day}, headers=api).json()
    assert fields["ratio"] == f"{telephone['numerator']} av {telephone['denominator']} samtal"
    assert fields["rejected"] == str(telephone["details"]["rejected"])

    month = {"from": PAST_DAY.replace(day=1).isoformat(), "to": day}
    page.goto(f"{base}/region/{quote(UPPSALA)}?fran={month['from']}&till={month['to']}")
    for metric in ("telephone", "assessment", "fixed_doctor", "continuity"):
        figures = httpx.get(f"{base}/api/v1/compliance", params={"metric": metric, **month, "region": UPPSALA}, headers=api).json()
        for figure in figures:
            cell = page.locator(f"tr[data-unit='{figure['unit']}'] td[data-metric='{metric}'] .ratio")
            assert cell.inner_text() == f"{figure['numerator']:,} av {figure['denominator']:,}".replace(",", "\u00a0"), (metric, figure["unit"])
    unit_without_data = page.locator(f"tr[data-unit='{VC03}'] td[data-metric='telephone'] .share")
    assert unit_without_data.inner_text() == "ingen data"
    context.close()


def test_the_qr_code_on_the_page_decodes_to_the_issued_enrollment_code(chromium, live_server):
    zxingcpp = pytest.importorskip("zxingcpp")
    image = pytest.importorskip("PIL.Image")
    base, services = live_server
    context, page = signed_in_page(chromium, base, token(services, Role.installer, region=UPPSALA))
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    page.goto(f"{base}/installation/{VC01}")
    page.fill("#ny-insamlare", "pi-vc01-qr")
    page.focus("#skapa-kod")
    page.keyboard.press("Enter")  # the form works from the keyboard
    page.wait_for_load_state("domcontentloaded")
    code = page.locator("#kod").inner_text()
    png = page.locator("#qr svg").screenshot()  # Chromium rasterises the server's SVG
    decoded = zxingcpp.read_barcodes(image.open(io.BytesIO(png)).convert("L"))
    assert [(d.text, d.format) for d in decoded] == [(code, zxingcpp.BarcodeFormat.QRCode)]
    enrolled = httpx.post(f"{base}/api/v1/enroll", json={"code": decoded[0].text, "device": "pi-vc01-qr"}, timeout=10)
    assert enrolled.status_code == 200 and enrolled.json()["unit"] == VC01  # a real, redeemable code
    assert not refused, refused  # nothing on the page breaks the Content-Security-Policy
    context.close()


@pytest.mark.parametrize("size, viewport", [("desktop", DESKTOP), ("mobil", PHONE)])
def test_screenshots_of_every_page(chromium, live_server, screenshots, size, viewport):
    base, services = live_server
    now = datetime.now(STOCKHOLM)
    today = now.date()
    events = []
    for offset in range(1, 8):  # a week of history for the month and the open cases
        events += day_of_events(VC01, today - timedelta(days=offset), seed=offset)
        events += day_of_events(VC02, today - timedelta(days=offset), seed=offset + 1, calls=15)
    events += day_of_events(VC01, today, latest=now, seed=9, calls=60)
    post_events(base, events)

    context = chromium.new_context(viewport=viewport, locale="sv-SE", timezone_id="Europe/Stockholm")
    page = context.new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    page.goto(f"{base}/logga-in")
    page.screenshot(path=str(screenshots / f"logga-in-{size}.png"), full_page=True)
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    pages = (
        ("klinikvy", f"/enhet/{VC01}"),
        ("regionvy", f"/region/{quote(UPPSALA)}"),
        ("hjalp-klinikvy", "/hjalp/klinikvy"),
        ("installationsvy", f"/installation/{VC01}"),
    )
    for name, path in pages:
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        if name == "klinikvy":
            expect(page.locator("#live-status")).to_contain_text("Uppdaterad", timeout=10_000)
            page.locator("#timmar details summary").click()  # the hourly table, opened from the page
        page.screenshot(path=str(screenshots / f"{name}-{size}.png"), full_page=True)
        assert_fits(page, name, viewport)
    page.fill("#ny-insamlare", "pi-reception-2")
    page.click("#skapa-kod")
    page.wait_for_load_state("domcontentloaded")
    page.screenshot(path=str(screenshots / f"engangskod-{size}.png"), full_page=True)
    assert_fits(page, "engangskod", viewport)
    assert not refused, refused  # no page breaks the Content-Security-Policy
    context.close()


def assert_fits(page, name: str, viewport: dict) -> None:
    """Nothing overflows the viewport sideways except inside a scrollable wrapper."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} is {overflow} px wider than a {viewport['width']} px screen"


def test_a_past_day_says_whether_data_came_in_after_it_not_the_units_newest_event_as_the_days(chromium, live_server):
    base, services = live_server
    later = {"v": 1, "id": "web-later-1", "type": "call.offered", "unit": VC01, "at": "2026-03-31T10:02:00+02:00", "call": "call-weblater1"}
    post_events(base, day_of_events(VC01, PAST_DAY) + [later])
    context, page = signed_in_page(chromium, base, token(services, Role.clinic_manager, unit=VC01))

    page.goto(f"{base}/enhet/{VC01}?dag={PAST_DAY.isoformat()}")  # 2 mar: an event of 31 mar came in after it
    line = page.locator("#telefon [data-field=freshness]").inner_text()
    assert line == "nyare data finns: enhetens senaste händelse nu är 31 mar 2026 kl. 10:02", line
    assert page.locator("tr[data-figure=telephone-month] [data-field=freshness]").inner_text() == line

    page.goto(f"{base}/enhet/{VC01}?dag=2026-03-31")  # the newest event is of that day: nothing after it
    line = page.locator("#telefon [data-field=freshness]").inner_text()
    assert line == "senaste händelse 31 mar 2026 kl. 10:02; inget har kommit in efter den här dagen", line
    context.close()
