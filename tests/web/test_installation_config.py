"""Installationsvy shows, per device, the newest remote config version pushed to it and what the
device reported about it in its heartbeat: tillämpad, avvisad, återställd, or still waiting."""

from __future__ import annotations

import re
from html import unescape

import orjson

from vardkoll.protocol.topics import config_topic
from vardkoll.server.auth import Role
from vardkoll.server.ingest.device_registry import DeviceRegistry

from .test_login_and_scope import login
from .world import ADMIN_TOKEN, UPPSALA, VC01, token

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def config_cell(html: str, device: str) -> str:
    row = html[html.index(f'<tr data-device="{device}">') :]
    row = row[: row.index("</tr>")]
    cell = row[row.index('data-field="config"') :]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", cell[cell.index(">") + 1 :]))).strip()


def push(client, device: str, version: str) -> None:
    response = client.put(f"/api/v1/units/{VC01}/devices/{device}/config", json={"version": version, "sections": {"poll_interval_s": 5}}, headers=ADMIN)
    assert response.status_code == 200, response.text


def heartbeat(services, device: str, config: dict) -> None:
    beat = {"status": "online", "at": "2026-11-23T14:05:00+01:00", "config": config}
    DeviceRegistry(services.sessions, accept_unregistered=False).record_status(VC01, device, orjson.dumps(beat))


def test_each_device_shows_its_pushed_version_and_what_it_made_of_it(web):
    client, services = web
    services.config_publisher = lambda unit, device, version, sections: config_topic(unit, device)
    push(client, "pi-reception", "2026-11-23.1")
    push(client, "pi-reception", "2026-11-23.2")
    push(client, "pi-telefoni", "2026-11-23.2")
    login(client, token(services, Role.installer, region=UPPSALA))

    heartbeat(services, "pi-reception", {"version": "2026-11-23.1", "state": "applied"})
    html = client.get(f"/installation/{VC01}").text
    assert config_cell(html, "pi-reception").startswith("2026-11-23.2 väntar på besked skickad")
    assert "Insamlaren: version 2026-11-23.1 gäller" in config_cell(html, "pi-reception")

    heartbeat(services, "pi-reception", {"version": "2026-11-23.2", "state": "applied"})
    heartbeat(
        services,
        "pi-telefoni",
        {"version": None, "state": "rolled_back", "rejected": {"version": "2026-11-23.2", "reason": "no connection to the broker within 30 s"}},
    )
    html = client.get(f"/installation/{VC01}").text
    assert config_cell(html, "pi-reception").startswith("2026-11-23.2 tillämpad skickad")
    telefoni = config_cell(html, "pi-telefoni")
    assert telefoni.startswith("2026-11-23.2 återställd skickad")
    assert "egen konfigurationsfil gäller; version 2026-11-23.2 återställd: no connection to the broker within 30 s" in telefoni
    assert 'lang="en">no connection' in html  # the device's own words, marked as English

    heartbeat(services, "pi-telefoni", {"version": None, "state": "refused", "rejected": {"version": "2026-11-23.2", "reason": "unknown connector type"}})
    assert config_cell(client.get(f"/installation/{VC01}").text, "pi-telefoni").startswith("2026-11-23.2 avvisad")
    assert config_cell(html, "pi-gammal") == "ingen skickad"  # nothing pushed, no config reported


def test_the_page_and_the_api_tell_the_same_outcome(web):
    client, services = web
    services.config_publisher = lambda unit, device, version, sections: config_topic(unit, device)
    push(client, "pi-reception", "5")
    heartbeat(services, "pi-reception", {"version": "4", "state": "refused", "rejected": {"version": "5", "reason": "bad folder"}})
    login(client, token(services, Role.clinic_manager, unit=VC01))  # reads the page, pushes nothing
    api = client.get(f"/api/v1/units/{VC01}/devices/pi-reception/config").json()
    assert api["latest_outcome"] == "refused" and api["versions"][0]["version"] == "5"
    assert config_cell(client.get(f"/installation/{VC01}").text, "pi-reception").startswith("5 avvisad")


def version_cell(html: str, device: str) -> str:
    row = html[html.index(f'<tr data-device="{device}">') :]
    row = row[: row.index("</tr>")]
    cell = row[row.index('data-field="version"') :]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", cell[cell.index(">") + 1 : cell.index("</td>")]))).strip()


def test_the_version_column_shows_the_running_software_and_a_refused_or_rolled_back_update(web):
    client, services = web
    login(client, token(services, Role.installer, region=UPPSALA))

    def beat(device: str, update: dict) -> None:
        document = {"status": "online", "at": "2026-12-04T14:05:00+01:00", "version": "0.2.0", "update": update}
        DeviceRegistry(services.sessions, accept_unregistered=False).record_status(VC01, device, orjson.dumps(document))

    beat(
        "pi-reception",
        {
            "running": "0.2.0",
            "state": "rolled_back",
            "rejected": {"version": "0.2.1", "reason": "version 0.2.1 did not reach the broker within 120 s; rolled back to 0.2.0"},
        },
    )
    beat("pi-telefoni", {"running": "0.2.0", "state": "staged", "offered": "0.3.0"})
    html = client.get(f"/installation/{VC01}").text
    assert version_cell(html, "pi-reception") == (
        "0.2.0 uppdatering till 0.2.1 återställd: version 0.2.1 did not reach the broker within 120 s; rolled back to 0.2.0"
    )
    assert version_cell(html, "pi-telefoni") == "0.2.0 uppdatering till 0.3.0 hämtad och kontrollerad; installeras"

    beat("pi-telefoni", {"running": "0.3.0", "state": "installed"})
    assert version_cell(client.get(f"/installation/{VC01}").text, "pi-telefoni") == "0.2.0"


def clock_cell(html: str, device: str) -> str:
    row = html[html.index(f'<tr data-device="{device}">') :]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[: row.index("</tr>")], flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", cells[3]))).strip()


def test_the_clock_column_says_what_ntp_or_else_the_collectors_own_check_says(web):
    client, services = web
    login(client, token(services, Role.installer, region=UPPSALA))
    registry = DeviceRegistry(services.sessions, accept_unregistered=False)

    def beat(device: str, clock: dict) -> None:
        registry.record_status(VC01, device, orjson.dumps({"status": "online", "at": "2026-11-23T14:05:00+01:00", "clock": clock}))

    beat("pi-reception", {"ntp_synced": True, "state": "ok"})
    beat("pi-telefoni", {"ntp_synced": "unknown", "state": "ok"})  # a container: NTP cannot be asked
    html = client.get(f"/installation/{VC01}").text
    assert clock_cell(html, "pi-reception").startswith("synkad (NTP)")
    assert clock_cell(html, "pi-telefoni").startswith("godtagbar (NTP-läget okänt)")
    beat("pi-telefoni", {"ntp_synced": "unknown", "state": "implausible", "reason": "the clock reads 1970-01-01, before 2026-11-01"})
    assert clock_cell(client.get(f"/installation/{VC01}").text, "pi-telefoni").startswith("ej betrodd the clock reads 1970-01-01")
