"""Remote config through the API: a pushed version is checked, published retained on the device's
config topic and recorded; the history says what the device reported about it. No broker: 503 and
nothing recorded."""

from __future__ import annotations

import threading

import orjson
import paho.mqtt.client as mqtt
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import inspect
from sqlmodel import SQLModel

from support import free_port
from vardkoll.protocol.topics import config_topic
from vardkoll.server.auth import ADMIN_TOKEN_NAME
from vardkoll.server.remote_config import broker_publisher
from vardkoll.server.ingest.device_registry import DeviceRegistry
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage import make_engine, migrate
from vardkoll.server.storage.schema_version import MIGRATIONS

from .api_world import UPPSALA, VC01, Api

DEVICE = "pi-reception"
CONFIG = f"/api/v1/units/{VC01}/devices/{DEVICE}/config"


class FakeBroker:
    """Stands in for the broker: keeps what was published (the seam `Services.config_publisher`)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, str, dict]] = []

    def __call__(self, unit: str, device: str, version: str, sections: dict) -> str:
        self.published.append((unit, device, version, sections))
        return config_topic(unit, device)


def with_device(api: Api) -> FakeBroker:
    api.register(VC01, UPPSALA)
    assert api.put(f"/api/v1/units/{VC01}/devices/{DEVICE}").status_code == 200
    broker = FakeBroker()
    api.services.config_publisher = broker
    return broker


def test_a_pushed_version_is_published_recorded_and_listed_newest_first(api):
    broker = with_device(api)
    first = api.put(CONFIG, json={"version": " 2026-11-23.1 ", "sections": {"publisher": {"max_events_per_s": 100}}})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == "2026-11-23.1" and first.json()["topic"] == f"vardkoll/v1/{VC01}/{DEVICE}/config"
    installer = api.token("installer", region=UPPSALA)
    second = api.put(CONFIG, json={"version": "2026-11-23.2", "sections": {"poll_interval_s": 5}}, token=installer)
    assert second.status_code == 200, second.text
    assert broker.published == [
        (VC01, DEVICE, "2026-11-23.1", {"publisher": {"max_events_per_s": 100}}),
        (VC01, DEVICE, "2026-11-23.2", {"poll_interval_s": 5}),
    ]
    history = api.get(CONFIG).json()
    assert [(v["version"], v["sections"], v["pushed_by"]) for v in history["versions"]] == [
        ("2026-11-23.2", {"poll_interval_s": 5}, f"test installer {UPPSALA}"),
        ("2026-11-23.1", {"publisher": {"max_events_per_s": 100}}, ADMIN_TOKEN_NAME),  # the environment's admin token
    ]
    assert history["reported"] is None and history["latest_outcome"] is None  # no heartbeat with a config yet


def test_the_same_version_as_the_last_one_is_409_and_not_published(api):
    broker = with_device(api)
    assert api.put(CONFIG, json={"version": "7", "sections": {"poll_interval_s": 5}}).status_code == 200
    again = api.put(CONFIG, json={"version": "7", "sections": {"poll_interval_s": 9}})
    assert again.status_code == 409 and "version 7 is already the last one pushed" in again.json()["detail"]
    assert len(broker.published) == 1 and len(api.get(CONFIG).json()["versions"]) == 1
    # An earlier name after another version is a new push: the collector only skips its last one.
    assert api.put(CONFIG, json={"version": "8", "sections": {"poll_interval_s": 9}}).status_code == 200
    assert api.put(CONFIG, json={"version": "7", "sections": {"poll_interval_s": 5}}).status_code == 200
    assert [v["version"] for v in api.get(CONFIG).json()["versions"]] == ["7", "8", "7"]


def test_sections_a_device_does_not_take_from_the_centre_are_refused_with_the_rule(api):
    broker = with_device(api)
    for sections, rule in (
        ({"unit": "SE2321000016-XX01"}, "unit cannot be set remotely"),
        ({"mqtt": {"password": "hemligt"}}, "mqtt.password cannot be sent over MQTT"),
        ({"outbox": {"path": "/tmp/x"}}, "outbox cannot be set remotely"),
    ):
        response = api.put(CONFIG, json={"version": "3", "sections": sections})
        assert response.status_code == 422 and rule in response.json()["detail"][0]["msg"], response.text
        assert "hemligt" not in response.text
    assert api.put(CONFIG, json={"version": "", "sections": {}}).status_code == 422
    assert broker.published == [] and api.get(CONFIG).json()["versions"] == []


def test_unknown_and_retired_devices(api):
    with_device(api)
    assert api.put(f"/api/v1/units/{VC01}/devices/pi-okand/config", json={"version": "1", "sections": {}}).status_code == 404
    assert api.get(f"/api/v1/units/{VC01}/devices/pi-okand/config").status_code == 404
    assert api.delete(f"/api/v1/units/{VC01}/devices/{DEVICE}").status_code == 200
    retired = api.put(CONFIG, json={"version": "1", "sections": {}})
    assert retired.status_code == 409 and "retired" in retired.json()["detail"]


def test_without_a_reachable_broker_the_answer_is_503_and_nothing_is_recorded(api):
    with_device(api)
    api.services.config_publisher = broker_publisher(ServerSettings(mqtt_url=f"mqtt://127.0.0.1:{free_port()}"), timeout_s=2)
    response = api.put(CONFIG, json={"version": "1", "sections": {"poll_interval_s": 5}})
    assert response.status_code == 503, response.text
    assert "cannot reach the broker at 127.0.0.1" in response.json()["detail"] and "nothing was recorded" in response.json()["detail"]
    assert api.get(CONFIG).json()["versions"] == []


def retained(broker, topic: str) -> bytes:
    """The retained message on `topic`, as a device subscribing after the push gets it."""
    got: list[bytes] = []
    arrived = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: (got.append(m.payload), arrived.set())
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert arrived.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0]


def test_through_a_real_broker_the_device_finds_the_document_retained_and_its_heartbeat_is_shown(api, mosquitto):
    with_device(api)
    api.services.config_publisher = broker_publisher(ServerSettings(mqtt_url=mosquitto.url))
    sections = {"publisher": {"max_events_per_s": 50}, "connectors": [{"type": "callback_csv", "folder": "/srv/callback"}]}
    assert api.put(CONFIG, json={"version": "2026-11-23.2", "sections": sections}).status_code == 200
    assert orjson.loads(retained(mosquitto, config_topic(VC01, DEVICE))) == {"v": 1, "version": "2026-11-23.2", "config": sections}

    # The device's heartbeat on its retained status topic, recorded as the MQTT consumer records it.
    registry = DeviceRegistry(api.services.sessions, accept_unregistered=False)
    beat = {"status": "online", "at": "2026-11-23T14:05:00+01:00", "config": {"version": "2026-11-23.1", "state": "applied"}}
    registry.record_status(VC01, DEVICE, orjson.dumps(beat))
    assert api.get(CONFIG).json()["latest_outcome"] == "pending"  # an older heartbeat: not handled yet
    rolled_back = {
        **beat,
        "config": {
            "version": "2026-11-23.1",
            "state": "rolled_back",
            "rejected": {"version": "2026-11-23.2", "reason": "no connection to the broker within 30 s"},
        },
    }
    registry.record_status(VC01, DEVICE, orjson.dumps(rolled_back))
    history = api.get(CONFIG).json()
    assert history["reported"] == {
        "version": "2026-11-23.1",
        "state": "rolled_back",
        "heartbeat_at": "2026-11-23T14:05:00+01:00",
        "rejected": {"version": "2026-11-23.2", "reason": "no connection to the broker within 30 s"},
    }
    assert history["latest_outcome"] == "rolled_back"
    registry.record_status(VC01, DEVICE, orjson.dumps({**beat, "config": {"version": "2026-11-23.2", "state": "applied"}}))
    assert api.get(CONFIG).json()["latest_outcome"] == "applied"


def _alembic(engine, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_migration_0005_matches_the_model_and_goes_down_and_up(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert [d for d in drift if "device_config_versions" in repr(d)] == []
        _alembic(engine, "downgrade", "0004")
        assert "device_config_versions" not in inspect(engine).get_table_names()
        migrate(engine)
        assert "device_config_versions" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
