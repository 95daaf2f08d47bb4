"""Per-device broker accounts against a real Mosquitto running the dynamic security plugin.

The broker is set up as deploy/broker/README.md says: `mosquitto_ctrl dynsec init` (the fixture), then the
server's own account from deploy/broker/create-server-account.sh. The server makes each device's account
at enrollment and deletes it at retirement or replacement.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from vardkoll.protocol.topics import ack_topic, config_topic, events_topic, status_topic
from vardkoll.server.services import build_consumer
from vardkoll.server.provisioning import BrokerAccountError, code_digest
from vardkoll.server.storage.enrollment_tables import EnrollmentCode
from vardkoll.server.storage.registry_tables import DeviceRow

from .api_world import UPPSALA, VC01, VC02, Api, running_api
from support.plugin import DYNSEC_ADMIN
from support import wait_until

REPO = Path(__file__).resolve().parents[2]
SERVER_ACCOUNT = ("vardkoll-server", "test-server-password-1")
TIMEOUT_S = 10


def create_server_account(broker) -> None:
    """The deploy script, run as an operator would (its refusals fail the test)."""
    admin, password = broker.dynsec_admin
    env = {**os.environ, "VARDKOLL_SERVER_MQTT_PASSWORD": SERVER_ACCOUNT[1], "VARDKOLL_MQTT_USERNAME": SERVER_ACCOUNT[0]}
    done = subprocess.run(
        [str(REPO / "deploy/broker/create-server-account.sh"), "-h", broker.host, "-p", str(broker.port), "-u", admin, "-P", password],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def api_on(broker, database_url: str, admin_password: str = DYNSEC_ADMIN[1]):
    return running_api(
        database_url,
        mqtt_url=broker.url,
        mqtt_username=SERVER_ACCOUNT[0],
        mqtt_password=SERVER_ACCOUNT[1],
        broker_accounts="dynsec",
        broker_admin_username=DYNSEC_ADMIN[0],
        broker_admin_password=admin_password,
        broker_admin_timeout_s=3,
    )


@pytest.fixture
def api(dynsec_broker, tmp_path) -> Iterator[Api]:
    create_server_account(dynsec_broker)
    with api_on(dynsec_broker, f"sqlite:///{tmp_path}/t.db") as api:
        api.register(VC01, UPPSALA)
        api.register(VC02, UPPSALA)
        yield api


def enroll(api: Api, unit: str = VC01, device: str = "pi-vc01-1") -> dict[str, Any]:
    code = api.post(f"/api/v1/units/{unit}/enrollment-codes").json()["code"]
    response = api.client.post("/api/v1/enroll", json={"code": code, "device": device})
    assert response.status_code == 200, response.text
    return response.json()


class Device:
    """A paho MQTT v5 client that records CONNACK, PUBACK and SUBACK reason codes and what it receives."""

    def __init__(self, broker, username: str, password: str, client_id: str) -> None:
        self.connack: Any = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.pubacks: dict[int, Any] = {}
        self.subacks: dict[int, list[Any]] = {}
        self.received: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.disconnect_reason: Any = None
        self.broker = broker
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = lambda client, userdata, mid, reason_code, properties: self.pubacks.__setitem__(mid, reason_code)
        self.client.on_subscribe = lambda client, userdata, mid, codes, properties: self.subacks.__setitem__(mid, list(codes))
        self.client.on_message = lambda client, userdata, message: self.received.append((message.topic, message.payload))
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT_S), "no CONNACK"

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnect_reason = reason_code
        self.disconnected.set()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = reason_code
        self.connected.set()
        if reason_code.is_failure:
            client.disconnect()  # paho would retry with the same refused credentials

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any:
        """QoS 1; the PUBACK's reason code. One at a time: Mosquitto 2.0.11 (Debian 12) sometimes drops the
        connection when several refused publishes are in flight at once (about every other run of six), and
        the client's resends after reconnecting are dropped the same way."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        assert wait_until(lambda: mid in self.pubacks, TIMEOUT_S), (
            f"no PUBACK for {topic}; disconnected: {self.disconnected.is_set()} ({self.disconnect_reason}); the broker's log ends:\n"
            + "\n".join(self.broker.log().splitlines()[-25:])
        )
        return self.pubacks[mid]

    def subscribe(self, topic: str) -> Any:
        _, mid = self.client.subscribe(topic, qos=1)
        assert wait_until(lambda: mid in self.subacks, TIMEOUT_S), f"no SUBACK for {topic}"
        return self.subacks[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def device_of(broker, enrolled: dict[str, Any]) -> Device:
    return Device(broker, enrolled["mqtt"]["username"], enrolled["mqtt"]["password"], enrolled["mqtt"]["client_id"])


def batch(device: str, event_id: str, unit: str = VC01) -> bytes:
    event = {"v": 1, "id": event_id, "type": "call.offered", "unit": unit, "at": "2026-03-02T08:00:00+01:00", "call": f"call-{event_id}"}
    return orjson.dumps({"device": device, "events": [event]})


def test_redeeming_a_code_makes_a_broker_account_that_publishes_its_events_and_receives_its_acks(api, dynsec_broker):
    enrolled = enroll(api)
    assert enrolled["mqtt"]["username"] == f"{VC01}/pi-vc01-1" and len(enrolled["mqtt"]["password"]) >= 40
    consumer = build_consumer(api.services, client_id="test-server")  # with the account the deploy script made
    consumer.start()
    try:
        assert consumer.connected.wait(TIMEOUT_S)
        device = device_of(dynsec_broker, enrolled)
        assert not device.connack.is_failure
        assert not device.subscribe(ack_topic(VC01, "pi-vc01-1")).is_failure
        assert not device.subscribe(config_topic(VC01, "pi-vc01-1")).is_failure
        assert not device.publish(status_topic(VC01, "pi-vc01-1"), b'{"status": "online"}', retain=True).is_failure
        assert not device.publish(events_topic(VC01, "pi-vc01-1"), batch("pi-vc01-1", "own-1")).is_failure
        acks = lambda: [orjson.loads(p) for t, p in device.received if t == ack_topic(VC01, "pi-vc01-1")]  # noqa: E731
        assert wait_until(lambda: any("own-1" in a.get("committed", []) for a in acks()), TIMEOUT_S), device.received
        device.close()
    finally:
        consumer.stop()


def test_a_device_may_not_publish_or_subscribe_under_another_device_or_unit(api, dynsec_broker):
    device = device_of(dynsec_broker, enroll(api))
    admin = Device(dynsec_broker, *DYNSEC_ADMIN, client_id="observer")  # the admin role may subscribe to every topic
    assert not admin.subscribe("vardkoll/v1/#").is_failure
    try:
        foreign = [
            events_topic(VC01, "pi-vc01-2"),
            events_topic(VC02, "pi-vc01-1"),
            status_topic(VC02, "pi-vc02-1"),
            ack_topic(VC01, "pi-vc01-1"),
            config_topic(VC01, "pi-vc01-1"),
            "vardkoll/v1/elsewhere",
        ]
        answers = {topic: device.publish(topic, batch("pi-vc01-1", "stray")) for topic in foreign}
        assert {topic: code.getName() for topic, code in answers.items()} == dict.fromkeys(foreign, "Not authorized")
        assert device.publish(events_topic(VC01, "pi-vc01-1"), batch("pi-vc01-1", "own")).getName() == "Success"
        assert wait_until(lambda: any(t == events_topic(VC01, "pi-vc01-1") for t, _ in admin.received), TIMEOUT_S)
        assert [t for t, _ in admin.received] == [events_topic(VC01, "pi-vc01-1")]  # the refused ones never arrived
        for topic in (ack_topic(VC01, "pi-vc01-2"), events_topic(VC01, "pi-vc01-1"), "vardkoll/v1/#", "#"):
            assert device.subscribe(topic).is_failure, topic
    finally:
        device.close()
        admin.close()


@pytest.mark.parametrize("how", ["retire", "replace", "re-enroll"])
def test_after_retiring_or_replacing_a_device_its_credentials_are_refused(api, dynsec_broker, how):
    enrolled = enroll(api)
    connected = device_of(dynsec_broker, enrolled)
    assert not connected.connack.is_failure
    if how == "retire":
        assert api.delete(f"/api/v1/units/{VC01}/devices/pi-vc01-1").status_code == 200
    elif how == "replace":
        assert api.post(f"/api/v1/units/{VC01}/devices/pi-vc01-1/replacement").status_code == 201
    else:
        assert enroll(api)["mqtt"]["password"] != enrolled["mqtt"]["password"]  # a new password; the old one stops
    assert connected.disconnected.wait(TIMEOUT_S), "the broker should drop the live connection of a deleted account"
    connected.close()
    again = device_of(dynsec_broker, enrolled)
    assert again.connack.is_failure and again.connack.getName() in ("Not authorized", "Bad user name or password")
    again.close()


def test_a_broker_failure_is_a_clear_503_and_neither_burns_the_code_nor_retires_the_device(api, dynsec_broker, tmp_path, caplog):
    code = api.post(f"/api/v1/units/{VC01}/enrollment-codes").json()["code"]
    enroll(api, device="pi-vc01-kept")
    database_url = str(api.services.engine.url)
    with api_on(dynsec_broker, database_url, admin_password="wrong-admin-password") as broken:
        refused = broken.client.post("/api/v1/enroll", json={"code": code, "device": "pi-vc01-1"})
        assert refused.status_code == 503 and "code has not been used" in refused.json()["detail"]
        assert "wrong-admin-password" not in caplog.text and "refused the admin account" in caplog.text
        retire = broken.delete(f"/api/v1/units/{VC01}/devices/pi-vc01-kept")
        assert retire.status_code == 503
        assert "not retired" in retire.json()["detail"] and "VARDKOLL_BROKER_ADMIN_PASSWORD" in retire.json()["detail"]
        replace = broken.post(f"/api/v1/units/{VC01}/devices/pi-vc01-kept/replacement")
        assert replace.status_code == 503 and "not replaced" in replace.json()["detail"]
    with api.services.sessions() as session:
        assert session.get(DeviceRow, (VC01, "pi-vc01-1")) is None
        assert session.get(DeviceRow, (VC01, "pi-vc01-kept")).retired_at is None
        assert session.scalars(select(EnrollmentCode).where(EnrollmentCode.code_sha256 == code_digest(code))).one().redeemed_at is None
    again = api.client.post("/api/v1/enroll", json={"code": code, "device": "pi-vc01-1"})  # the broker is fine again
    assert again.status_code == 200 and again.json()["mqtt"]["username"] == f"{VC01}/pi-vc01-1"


def test_replacing_from_installationsvy_locks_the_device_out_and_a_broker_failure_changes_nothing(api, dynsec_broker):
    import re

    def replace_from_page(running: Api, device: str):
        running.client.post("/logga-in", data={"token": running.token("installer", region=UPPSALA), "nasta": "/"}, follow_redirects=False)
        page = running.client.get(f"/installation/{VC01}")
        assert "Dess konto i MQTT-brokern tas bort" in page.text
        csrf = re.search(r'name="csrf" value="(?P<value>[0-9a-f]*)"', page.text)["value"]
        return running.client.post(f"/installation/{VC01}/ersatt", data={"csrf": csrf, "ersatt": device})

    first, second = enroll(api, device="pi-vc01-1"), enroll(api, device="pi-vc01-2")
    with api_on(dynsec_broker, str(api.services.engine.url), admin_password="wrong-admin-password") as broken:
        refused = replace_from_page(broken, "pi-vc01-2")
        assert refused.status_code == 503 and "kunde inte spärras i MQTT-brokern, så inget har ändrats" in refused.text
    assert replace_from_page(api, "pi-vc01-1").status_code == 200
    replaced, kept = device_of(dynsec_broker, first), device_of(dynsec_broker, second)
    assert replaced.connack.is_failure
    assert not kept.connack.is_failure  # the failed replacement left it alone
    replaced.close()
    kept.close()
    with api.services.sessions() as session:
        assert session.get(DeviceRow, (VC01, "pi-vc01-2")).retired_at is None


def test_no_dynsec_plugin_answering_is_a_timeout_that_names_the_plugin(mosquitto_factory):
    from vardkoll.server.provisioning import BrokerAccounts
    from vardkoll.server.provisioning.dynsec import BrokerAddress

    plain = mosquitto_factory()  # anonymous, no plugin: commands go nowhere
    accounts = BrokerAccounts(BrokerAddress(plain.host, plain.port, "anyone", "secret"), timeout_s=0.5)
    with pytest.raises(BrokerAccountError, match="no answer from the dynamic security plugin.*plugin loaded"):
        accounts.provision(VC01, "pi-vc01-1")


def test_dynsec_mode_without_the_admin_account_is_refused_at_start():
    from pydantic import ValidationError

    from vardkoll.server.settings import ServerSettings

    with pytest.raises(ValidationError, match="VARDKOLL_BROKER_ADMIN_USERNAME and VARDKOLL_BROKER_ADMIN_PASSWORD"):
        ServerSettings(broker_accounts="dynsec", broker_admin_username="vardkoll-admin")
    assert ServerSettings().broker_accounts == "manual"


def test_admin_cli_retire_deletes_the_broker_account_and_a_broker_failure_retires_nothing(api, dynsec_broker, monkeypatch):
    from typer.testing import CliRunner

    from vardkoll.admin_cli import admin_app

    enrolled = enroll(api)
    for name, value in {
        "DATABASE_URL": str(api.services.engine.url),
        "MQTT_URL": dynsec_broker.url,
        "BROKER_ACCOUNTS": "dynsec",
        "BROKER_ADMIN_USERNAME": DYNSEC_ADMIN[0],
        "BROKER_ADMIN_PASSWORD": "wrong-admin-password",
        "BROKER_ADMIN_TIMEOUT_S": "3",
    }.items():
        monkeypatch.setenv(f"VARDKOLL_{name}", value)
    refused = CliRunner().invoke(admin_app, ["devices", "retire", VC01, "pi-vc01-1"], catch_exceptions=False)
    assert refused.exit_code == 2 and "was not retired (nothing changed)" in refused.output and "refused the admin account" in refused.output
    still = device_of(dynsec_broker, enrolled)
    assert not still.connack.is_failure
    monkeypatch.setenv("VARDKOLL_BROKER_ADMIN_PASSWORD", DYNSEC_ADMIN[1])
    retired = CliRunner().invoke(admin_app, ["devices", "retire", VC01, "pi-vc01-1"], catch_exceptions=False)
    assert retired.exit_code == 0 and "its broker account is deleted" in retired.output
    assert still.disconnected.wait(TIMEOUT_S)
    still.close()
    with api.services.sessions() as session:
        assert session.get(DeviceRow, (VC01, "pi-vc01-1")).retired_at is not None


def test_a_device_account_cannot_take_over_the_server_session_nor_another_client_id(api, dynsec_broker):
    """A device's account once connected with the server's client id and received another clinic's batches."""
    enrolled = enroll(api)
    assert enrolled["mqtt"]["client_id"] == f"{VC01}/pi-vc01-1"
    server_id = "vardkoll-server-host-1"
    consumer = build_consumer(api.services, client_id=server_id)
    consumer.start()
    try:
        assert consumer.connected.wait(TIMEOUT_S)
        for stolen in (server_id, f"{VC02}/pi-vc02-1", "pi-vc01-1"):
            intruder = Device(dynsec_broker, enrolled["mqtt"]["username"], enrolled["mqtt"]["password"], stolen)
            assert intruder.connack.is_failure, stolen
            intruder.close()
        assert wait_until(consumer.connected.is_set, 2) and consumer.client_id == server_id  # never thrown off
        own = device_of(dynsec_broker, enrolled)
        assert not own.connack.is_failure
        own.close()
    finally:
        consumer.stop()
