"""The restore drill (docs/operations.md, "Backup and restore"): back up with deploy/backup/backup.sh while the
server runs, destroy the database and the broker's accounts, restore with deploy/backup/restore.sh into a
database made again by deploy/postgres/setup.sh: the API answers the same figures, and the device account
the server made before the backup logs in to the broker again."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading

import httpx
import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector_agent.collector_process import EXAMPLE_UNIT, example_events
from support import on_ci
from support.mosquitto import Broker, dynsec_missing_reason
from support.plugin import DYNSEC_ADMIN
from support.postgres import start_cluster

from .deployment import DEPLOY, ServerSlot, UnitFile, run_unit_once, write_env_file

ADMIN_TOKEN = "drill-" + secrets.token_urlsafe(24)
PASSWORDS = {"owner": "drill-owner-pw", "app": "drill-app-pw", "server_mqtt": "drill-mqtt-pw"}
PERIOD = {"from": "2026-03-02", "to": "2026-03-16"}
METRICS = ("telephone", "assessment", "fixed_doctor", "continuity")


@pytest.fixture
def cluster():
    cluster = start_cluster()
    yield cluster
    cluster.stop()


def run(argv: list, **env: str) -> None:
    done = subprocess.run([str(a) for a in argv], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{argv[0]}: {done.stderr}"


def figures(base: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return [
        httpx.get(f"{base}/api/v1/units/{EXAMPLE_UNIT}/compliance", params={"metric": metric, **PERIOD}, headers=headers, timeout=30).json()
        for metric in METRICS
    ] + [httpx.get(f"{base}/api/v1/compliance", params={"metric": metric, **PERIOD}, headers=headers, timeout=30).json() for metric in METRICS]


def broker_accepts(broker: Broker, username: str, password: str) -> bool:
    answered, accepted = threading.Event(), []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)  # the account is bound to its client id
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, reason, p: (accepted.append(not reason.is_failure), answered.set())
    client.connect(broker.host, broker.port)
    client.loop_start()
    answered.wait(10)
    client.loop_stop()
    client.disconnect()
    return accepted == [True]


def test_back_up_destroy_restore_and_the_api_answers_the_same_figures(tmp_path, cluster, mosquitto_factory):
    reason = dynsec_missing_reason()
    if reason:
        pytest.fail(reason) if on_ci() else pytest.skip(reason)
    broker = mosquitto_factory(dynsec=DYNSEC_ADMIN)
    pg = cluster
    connection = ["-h", pg.host, "-p", str(pg.port), "-U", pg.user]
    run([DEPLOY / "postgres" / "setup.sh", *connection], VARDKOLL_OWNER_PASSWORD=PASSWORDS["owner"], VARDKOLL_APP_PASSWORD=PASSWORDS["app"])
    run(
        [DEPLOY / "broker" / "create-server-account.sh", "-h", broker.host, "-p", broker.port, "-u", DYNSEC_ADMIN[0], "-P", DYNSEC_ADMIN[1]],
        VARDKOLL_SERVER_MQTT_PASSWORD=PASSWORDS["server_mqtt"],
    )
    owner_url = f"postgresql://vardkoll_owner:{PASSWORDS['owner']}@{pg.host}:{pg.port}/vardkoll"
    etc = tmp_path / "etc"
    etc.mkdir()
    write_env_file(
        DEPLOY / "server" / "vardkoll.env",
        etc / "vardkoll.env",
        {
            "VARDKOLL_DATABASE_URL": f"postgresql://vardkoll_app:{PASSWORDS['app']}@{pg.host}:{pg.port}/vardkoll",
            "VARDKOLL_MQTT_URL": broker.url,
            "VARDKOLL_MQTT_CA_FILE": "",
            "VARDKOLL_MQTT_PASSWORD": PASSWORDS["server_mqtt"],
            "VARDKOLL_DEVICE_MQTT_URL": broker.url,
            "VARDKOLL_BROKER_ADMIN_PASSWORD": DYNSEC_ADMIN[1],
            "VARDKOLL_ADMIN_TOKEN": ADMIN_TOKEN,
        },
    )
    write_env_file(DEPLOY / "server" / "migrate.env", etc / "migrate.env", {"VARDKOLL_DATABASE_URL": owner_url})
    env_files = {"/etc/vardkoll/vardkoll.env": etc / "vardkoll.env", "/etc/vardkoll/migrate.env": etc / "migrate.env"}
    assert run_unit_once(UnitFile.read(DEPLOY / "server" / "vardkoll-migrate.service"), env_files).returncode == 0
    unit = UnitFile.read(DEPLOY / "server" / "vardkoll-server@.service")
    server = ServerSlot(unit, env_files, tmp_path).start()
    try:
        server.wait_ready()
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
        assert api.post("/api/v1/units", json={"unit": EXAMPLE_UNIT, "name": "Vårdcentralen Övning", "region": "Uppsala"}).status_code == 201
        events = [{k: v for k, v in event.items() if k != "device"} for event in example_events(3000)]
        for start in range(0, len(events), 1000):
            answer = api.post("/api/v1/events", content=orjson.dumps(events[start : start + 1000]), headers={"content-type": "application/json"})
            assert answer.status_code == 200 and not answer.json()["rejected"], answer.text
        code = api.post(f"/api/v1/units/{EXAMPLE_UNIT}/enrollment-codes").json()["code"]
        device = api.post("/api/v1/enroll", json={"code": code, "device": "pi-drill"}).json()["mqtt"]
        before = figures(server.url)
        assert before[0]["denominator"] > 0 and all(figure["unit"] == EXAMPLE_UNIT for figure in before[:4])

        backup = tmp_path / "backup"
        run(
            [DEPLOY / "backup" / "backup.sh", backup],
            VARDKOLL_BACKUP_DATABASE_URL=owner_url,
            VARDKOLL_DYNSEC_FILE=str(broker.dynsec_path),
            VARDKOLL_BACKUP_FILES=str(etc),
        )
        assert {p.name for p in backup.iterdir()} == {"vardkoll.dump", "dynamic-security.json", "files", "SHA256SUMS", "MANIFEST"}
        assert "schema=0" in (backup / "MANIFEST").read_text()

        # The disaster: the servers stop, the database and the broker's accounts are gone.
        server.stop()
        broker.stop()
        broker.dynsec_path.unlink()
        with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname="postgres", autocommit=True) as admin:
            admin.execute("DROP DATABASE vardkoll WITH (FORCE)")

        run([DEPLOY / "postgres" / "setup.sh", *connection], VARDKOLL_OWNER_PASSWORD=PASSWORDS["owner"], VARDKOLL_APP_PASSWORD=PASSWORDS["app"])
        run([DEPLOY / "backup" / "restore.sh", backup], VARDKOLL_RESTORE_DATABASE_URL=owner_url, VARDKOLL_DYNSEC_FILE=str(broker.dynsec_path))
        broker.start()
        server.start()
        server.wait_ready()
        assert figures(server.url) == before
        assert broker_accepts(broker, device["username"], device["password"])
        # A second restore over the restored database is refused rather than mixed in.
        again = subprocess.run(
            [DEPLOY / "backup" / "restore.sh", backup], env={**os.environ, "VARDKOLL_RESTORE_DATABASE_URL": owner_url}, capture_output=True, text=True
        )
        assert again.returncode == 1 and "restore into an empty one" in again.stderr
    finally:
        server.stop()
