"""The server side as a region runs it, started from the files in deploy/ (docs/operations.md, "Install on
Debian"): PostgreSQL with the rows-only role (deploy/postgres/setup.sh), Mosquitto with TLS and dynsec
(deploy/broker/), the migration unit, two server slots (vardkoll-server@.service), nginx with TLS
(deploy/nginx/vardkoll.conf), certificates from deploy/tls/make-staging-certs.sh.

A real collector enrolls over HTTPS with a one-time code and publishes over TLS with the broker account the
server made for it; Chromium opens Klinikvy through nginx and sees its call within 2 s. Then, while the
collector drains a backlog: kill -9 of a server process, a broker restart and a PostgreSQL restart. Every
event is stored once and the API's figures equal `vardkoll replay` of what was sent.
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import orjson
import psycopg
import pytest

from collector_agent.collector_process import EXAMPLE_DEVICE, EXAMPLE_UNIT, CollectorProcess, example_events, outbox_counters
from support import on_ci, wait_until
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.mosquitto import dynsec_missing_reason
from support.postgres import start_cluster
from vardkoll.collector.outbox import Outbox
from vardkoll.server.monitoring.version import version
from vardkoll.server.replay import replay_path

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

from .deployment import DEPLOY, DeployedBroker, Nginx, ServerSlot, UnitFile, run_unit_once, spki_sha256, vardkoll_exe, write_env_file

UNIT, DEVICE = EXAMPLE_UNIT, EXAMPLE_DEVICE
BACKLOG = 6000  # events in the collector's outbox when it comes back (as after an outage)
STOCKHOLM = ZoneInfo("Europe/Stockholm")
ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)
METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(24)
DYNSEC_ADMIN = ("vardkoll-admin", "dynsec-" + secrets.token_urlsafe(16))
PASSWORDS = {"owner": "owner-" + secrets.token_urlsafe(12), "app": "app-" + secrets.token_urlsafe(12), "server_mqtt": "mqtt-" + secrets.token_urlsafe(12)}
# The collector: quick to start and to resend in a test; the drain slow enough that the faults land in it.
PUBLISHER = {
    "start_jitter_s": 0.2,
    "resend_after_s": 3,
    "max_resend_after_s": 6,
    "heartbeat_interval_s": 2,
    "batch_events": 100,
    "max_events_per_s": 250,
    "max_inflight_batches": 4,
}


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tls = root / "tls"
        self.closers: list[Callable[[], object]] = []
        self.live_ids: set[str] = set()

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # noqa: BLE001  (tear down the rest)
                pass

    # -- the pieces, in the order docs/operations.md installs them ----------------------------------------

    def certificates(self) -> None:
        done = subprocess.run(
            [DEPLOY / "tls" / "make-staging-certs.sh", self.tls, "localhost,127.0.0.1", "localhost,127.0.0.1"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr

    def database(self) -> None:
        self.postgres = start_cluster()
        self.closers.append(self.postgres.stop)
        pg = self.postgres
        done = subprocess.run(
            [DEPLOY / "postgres" / "setup.sh", "-h", pg.host, "-p", str(pg.port), "-U", pg.user],
            env={**os.environ, "VARDKOLL_OWNER_PASSWORD": PASSWORDS["owner"], "VARDKOLL_APP_PASSWORD": PASSWORDS["app"]},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        # From here on the roles log in with their passwords, as on a real server (the superuser stays trusted
        # on loopback so the test can look).
        # The test cluster turns synchronous_commit off for speed; production keeps it on (deploy/postgres/vardkoll.conf),
        # and only then does a crash of PostgreSQL keep every commit the servers acknowledged.
        with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname="postgres", autocommit=True) as admin:
            admin.execute("ALTER DATABASE vardkoll SET synchronous_commit = on")
        (pg.data_dir / "pg_hba.conf").write_text(f"local all all trust\nhost all {pg.user} 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        pg.reload()

    def database_url(self, role: str) -> str:
        return f"postgresql://vardkoll_{role}:{PASSWORDS[role]}@{self.postgres.host}:{self.postgres.port}/vardkoll"

    def broker(self) -> None:
        self.mqtt = DeployedBroker(self.root / "broker", self.tls, DYNSEC_ADMIN).start()
        self.closers.append(self.mqtt.stop)
        done = subprocess.run(
            [DEPLOY / "broker" / "create-server-account.sh", *self.mqtt.ctrl_options(DYNSEC_ADMIN)],
            env={**os.environ, "VARDKOLL_SERVER_MQTT_PASSWORD": PASSWORDS["server_mqtt"]},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    def settings(self) -> None:
        etc = self.root / "etc"
        etc.mkdir()
        write_env_file(
            DEPLOY / "server" / "vardkoll.env",
            etc / "vardkoll.env",
            {
                "VARDKOLL_DATABASE_URL": self.database_url("app"),
                "VARDKOLL_MQTT_URL": self.mqtt.url,
                "VARDKOLL_MQTT_CA_FILE": str(self.tls / "ca.crt"),
                "VARDKOLL_MQTT_PASSWORD": PASSWORDS["server_mqtt"],
                "VARDKOLL_DEVICE_MQTT_URL": self.mqtt.url,
                "VARDKOLL_BROKER_ADMIN_PASSWORD": DYNSEC_ADMIN[1],
                "VARDKOLL_ADMIN_TOKEN": ADMIN_TOKEN,
                "VARDKOLL_METRICS_TOKEN": METRICS_TOKEN,
            },
        )
        write_env_file(DEPLOY / "server" / "migrate.env", etc / "migrate.env", {"VARDKOLL_DATABASE_URL": self.database_url("owner")})
        self.env_files = {"/etc/vardkoll/vardkoll.env": etc / "vardkoll.env", "/etc/vardkoll/migrate.env": etc / "migrate.env"}
        self.server_unit = UnitFile.read(DEPLOY / "server" / "vardkoll-server@.service")
        self.migrate_unit = UnitFile.read(DEPLOY / "server" / "vardkoll-migrate.service")

    def servers(self) -> None:
        self.slots = [ServerSlot(self.server_unit, self.env_files, self.root) for _ in range(2)]
        for slot in self.slots:
            slot.start()
            self.closers.append(slot.stop)
        for slot in self.slots:
            slot.wait_ready()

    def proxy(self) -> None:
        self.nginx = Nginx(self.root / "nginx", self.tls, [slot.port for slot in self.slots])
        checked = self.nginx.check()
        assert checked.returncode == 0, checked.stderr
        self.nginx.start()
        self.closers.append(self.nginx.stop)
        self.https = httpx.Client(
            base_url=self.nginx.url,
            verify=ssl.create_default_context(cafile=str(self.tls / "ca.crt")),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        self.closers.append(self.https.close)

    def stored_events(self) -> int:
        return len(self.stored_event_ids())

    def stored_event_ids(self) -> set[str]:
        pg = self.postgres
        with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname="vardkoll", connect_timeout=5) as connection:
            return {event_id for (event_id,) in connection.execute("SELECT event_id FROM events")}


@pytest.fixture
def stack(tmp_path):
    for reason in (dynsec_missing_reason(),):
        if reason:
            pytest.fail(reason) if on_ci() else pytest.skip(reason)
    stack = Stack(tmp_path)
    try:
        yield stack
    finally:
        stack.close()


def enroll_collector(stack: Stack, code: str) -> tuple[Path, Path]:
    folder = stack.root / "collector"
    config = folder / "collector.toml"
    done = subprocess.run(
        [
            vardkoll_exe(),
            "collector",
            "enroll",
            "--server",
            stack.nginx.url,
            "--code",
            code,
            "--device",
            DEVICE,
            "--config",
            str(config),
            "--state-dir",
            str(folder / "state"),
            "--ca-file",
            str(stack.tls / "ca.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # What the installer adds (docs/collector.md): the CA of the broker's certificate, the source, quick polling.
    exports = folder / "exports"
    exports.mkdir()
    text = config.read_text()
    assert '# ca_file = "/etc/vardkoll-collector/ca.pem"' in text
    text = text.replace('# ca_file = "/etc/vardkoll-collector/ca.pem"', f"ca_file = {orjson.dumps(str(stack.tls / 'ca.crt')).decode()}")
    text = text.replace("\n[mqtt]\n", "\npoll_interval_s = 0.2\n\n[mqtt]\n", 1)
    text += "\n[publisher]\n" + "".join(f"{key} = {value}\n" for key, value in PUBLISHER.items())
    text += f'\n[[connectors]]\ntype = "callback_csv"\nfolder = {orjson.dumps(str(exports)).decode()}\nsettle_s = 0\n'
    config.write_text(text)
    return config, exports


def one_call_answered_now(exports: Path) -> None:
    now = datetime.now(STOCKHOLM).strftime("%Y-%m-%d %H:%M:%S")
    staging = exports / "export.part"
    staging.write_text(f"call_id;call_time;callback_booked;callback_made;outcome\nPROD-1;{now};;;besvarad\n", encoding="utf-8")
    staging.rename(exports / "export-live.csv")  # whole, as a callback system's export appears


def test_the_deployed_server_side_counts_every_event_once_through_a_server_crash_a_broker_and_a_database_restart(stack, playwright_driver):
    stack.certificates()
    stack.database()
    stack.broker()
    stack.settings()

    # The servers refuse a database without the schema; the migration unit makes it, as the schema's owner.
    early = ServerSlot(stack.server_unit, stack.env_files, stack.root).start()
    assert early.process is not None and early.process.wait(60) != 0
    assert "vardkoll migrate" in early.log()
    migrated = run_unit_once(stack.migrate_unit, stack.env_files)
    assert migrated.returncode == 0, migrated.stderr
    stack.servers()
    stack.proxy()
    api = stack.https

    # nginx: HTTPS with HSTS, plain HTTP redirected, /metrics not reachable from outside, request ids through.
    health = api.get("/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["version"] == version()  # the installed release, as `vardkoll --version` and the footer say it
    assert health.headers["strict-transport-security"].startswith("max-age=63072000")
    assert len(health.headers["x-request-id"]) == 32  # nginx's $request_id, passed on and answered
    assert api.get("/metrics").status_code == 404
    plain = httpx.get(f"http://127.0.0.1:{stack.nginx.http_port}/api/v1/health", follow_redirects=False)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")

    # The region registers the clinic, gives its manager a token and the installer a one-time code.
    assert api.post("/api/v1/units", json={"unit": UNIT, "name": "Vårdcentralen Produktion", "region": "Uppsala"}).status_code == 201
    manager = api.post("/api/v1/tokens", json={"name": "Verksamhetschef", "role": "clinic_manager", "unit": UNIT}).json()["token"]
    code = api.post(f"/api/v1/units/{UNIT}/enrollment-codes").json()["code"]
    config, exports = enroll_collector(stack, code)
    assert f'username = "{UNIT}/{DEVICE}"' in config.read_text()  # its own broker account, made by the server
    collector = CollectorProcess(config).start()
    stack.closers.append(collector.stop)

    live_s = watch_a_call_arrive_in_klinikvy(playwright_driver, stack, manager, exports)

    # An outage's backlog: the collector stops, finds 6 000 events in its outbox, and drains them while
    # one server process is killed, the broker restarts and PostgreSQL restarts.
    assert collector.stop() == 0
    outbox_path = config.parent / "state" / "outbox.db"
    assert outbox_counters(outbox_path)["events"] == 0 and stack.stored_events() == 2  # the call: offered, answered
    stack.live_ids = stack.stored_event_ids()
    outbox = Outbox(outbox_path, unit=UNIT, device=DEVICE)
    assert outbox.add(example_events(BACKLOG)).added == BACKLOG
    archive = stack.root / "sent.jsonl"
    with open(archive, "wb") as stream:
        assert outbox.dump_jsonl(stream) == BACKLOG
    outbox.close()
    total = BACKLOG + 2
    collector.start()

    def stored_past(count: int) -> bool:
        return wait_until(lambda: stack.stored_events() >= count, 90, interval_s=0.2)

    assert stored_past(2 + 600), collector.log()
    crashed = stack.slots[0]
    crashed.kill()  # kill -9
    assert stack.stored_events() < total, "the drain ended before the crash; slow it down"
    time.sleep(2)  # RestartSec=2
    crashed.start()
    crashed.wait_ready()
    assert stored_past(stack.stored_events() + 600), collector.log()
    stack.mqtt.restart()
    assert stack.stored_events() < total, "the drain ended before the broker restart; slow it down"
    assert stored_past(stack.stored_events() + 600), collector.log()
    stack.postgres.restart("immediate")  # like a crash: connections cut, recovery at start
    assert stack.stored_events() < total, "the drain ended before the PostgreSQL restart; slow it down"
    drained = wait_until(lambda: outbox_counters(outbox_path).get("events") == 0 and stack.stored_events() == total, 180, interval_s=0.5)
    assert drained, (stack.stored_events(), outbox_counters(outbox_path), collector.log())
    assert outbox_counters(outbox_path)["committed"] == total

    # Every event once: exactly the ids sent are stored, and the API's figures equal replay's.
    sent = {orjson.loads(line)["id"] for line in archive.read_bytes().splitlines()}
    assert stack.stored_event_ids() == sent | stack.live_ids and len(sent) == BACKLOG
    expected = replay_path(archive)
    assert expected["rejected"] == [] and expected["duplicates"] == 0 and expected["results"]
    for want in expected["results"]:
        got = api.get(f"/api/v1/units/{UNIT}/compliance", params={"metric": want["metric"], "from": want["from"], "to": want["to"]})
        assert got.status_code == 200, got.text
        figure = {key: value for key, value in got.json().items() if key not in ("definition_version", "data")}
        assert figure == want

    # Both processes are up, connected and say so to the scraper (each on its own loopback port).
    for slot in stack.slots:
        assert slot.ready()
        scraped = httpx.get(f"{slot.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
        assert scraped.status_code == 200 and "vardkoll_broker_connected 1.0" in scraped.text
        assert httpx.get(f"{slot.url}/metrics", timeout=10).status_code == 401
    # JSON logs (VARDKOLL_LOG_FORMAT=json in vardkoll.env) carry nginx's request ids.
    access = [orjson.loads(line) for line in stack.slots[1].log_path.read_text().splitlines() if line.startswith("{") and '"vardkoll.access"' in line]
    assert access and all(len(line.get("request_id", "")) == 32 for line in access if line["http"]["path"] == "/api/v1/health")
    print(f"live change through nginx: {live_s:.2f} s")


def _live_streams(slot: ServerSlot) -> float:
    scraped = httpx.get(f"{slot.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    return next(float(line.split()[1]) for line in scraped.splitlines() if line.startswith("vardkoll_live_streams_open "))


def watch_a_call_arrive_in_klinikvy(playwright: "Playwright", stack: Stack, manager: str, exports: Path) -> float:
    """Chromium (trusting only the staging web certificate's key) opens Klinikvy through nginx over HTTP/2;
    a call the collector picks up appears within 2 s."""
    from playwright.sync_api import expect

    trust = f"--ignore-certificate-errors-spki-list={spki_sha256(stack.tls / 'web.crt')}"
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, trust], headless=True)
    try:
        context = browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm")
        page = context.new_page()
        page.goto(f"{stack.nginx.url}/logga-in")
        page.fill("#token", manager)
        page.click("button[type=submit]")
        page.wait_for_load_state("domcontentloaded")
        assert page.url.endswith(f"/enhet/{UNIT}")
        assert page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
        assert all(cookie["secure"] for cookie in context.cookies())  # the server knew it was HTTPS (X-Forwarded-Proto)
        ratio = page.locator("#telefon [data-field=ratio]")
        assert ratio.inner_text() == "0 av 0 samtal"
        expect(page.locator("#live-status")).to_contain_text("Uppdaterad", timeout=15_000)
        assert sum(_live_streams(slot) for slot in stack.slots) >= 1  # the page's stream, in the scrape of the slot serving it
        started = time.monotonic()
        one_call_answered_now(exports)
        expect(ratio).to_have_text("1 av 1 samtal", timeout=10_000)
        elapsed = time.monotonic() - started
        assert page.locator("footer").inner_text() == f"vardkoll {version()}"
    finally:
        browser.close()
    assert elapsed < 2.0, f"the call took {elapsed:.2f} s to reach the page"
    return elapsed
