"""Remote config versions through a real Mosquitto: applied once per version, kept across restarts, and
rolled back (and reported) when the new config cannot reach a broker."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from support import free_port, wait_until
from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig
from vardkoll.collector.remote_config import RemoteConfig, RemoteState, load_state, save_state
from vardkoll.protocol.topics import config_topic, status_topic

from .events import DEVICE, UNIT
from .fakes import FakeMqttClient


def config_for(tmp_path: Path, url: str, timeout_s: float = 3.0) -> CollectorConfig:
    return CollectorConfig(
        unit=UNIT,
        device=DEVICE,
        poll_interval_s=0.2,
        mqtt={"url": url},
        outbox={"path": tmp_path / "state" / "outbox.db"},
        pseudonyms={"secret_file": tmp_path / "state" / "pseudonym.key"},
        publisher={"start_jitter_s": 0, "heartbeat_interval_s": 0.5},
        remote_config={"apply_timeout_s": timeout_s},
    )


class Watcher:
    """A test client on the broker: publishes config documents and collects the device's status."""

    def __init__(self, broker) -> None:
        self.statuses: list[dict] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.statuses.append(orjson.loads(m.payload)) if m.payload.startswith(b"{") else None
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(status_topic(UNIT, DEVICE), qos=1)
        self.client.loop_start()
        assert subscribed.wait(10)

    def publish_config(self, version: str, overrides: dict) -> None:
        document = json.dumps({"v": 1, "version": version, "config": overrides})
        self.client.publish(config_topic(UNIT, DEVICE), document, qos=1, retain=True).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def watcher(mosquitto):
    watcher = Watcher(mosquitto)
    yield watcher
    watcher.close()


def start(agent: Agent) -> tuple[threading.Thread, list[str]]:
    results: list[str] = []
    apply = agent.apply_remote

    def recorded(payload: bytes) -> str:
        results.append(apply(payload))
        return results[-1]

    agent.apply_remote = recorded
    thread = threading.Thread(target=agent.run, kwargs={"install_signal_handlers": False}, daemon=True)
    thread.start()
    assert wait_until(lambda: agent.publisher.connected, 15)
    return thread, results


def stop(agent: Agent, thread: threading.Thread) -> None:
    agent.stop()
    thread.join(15)


def test_a_new_version_is_applied_once_and_the_same_version_is_not_applied_again(tmp_path, mosquitto, watcher):
    agent = Agent(config_for(tmp_path, mosquitto.url), clock_state=lambda: None)
    thread, results = start(agent)
    try:
        watcher.publish_config("2026-11-23.1", {"poll_interval_s": 0.7, "publisher": {"heartbeat_interval_s": 0.3}})
        # The new connection gets the retained document again: seen, "unchanged", however fast it comes.
        assert wait_until(lambda: results[:1] == ["applied"] and agent.publisher.connected, 15), results
        assert set(results[1:]) <= {"unchanged"}, results
        assert agent.config.poll_interval_s == 0.7 and agent.config.publisher.heartbeat_interval_s == 0.3
        assert agent.config.publisher.start_jitter_s == 0  # the rest of the section stays as the file says
        applied_with = agent.publisher
        assert wait_until(lambda: len(results) >= 2, 10), results  # the retained document, seen again
        seen = len(results)
        watcher.publish_config("2026-11-23.1", {"poll_interval_s": 0.7, "publisher": {"heartbeat_interval_s": 0.3}})
        assert wait_until(lambda: len(results) > seen, 10), (seen, results)
        assert results[0] == "applied" and set(results[1:]) == {"unchanged"} and agent.publisher is applied_with
        assert wait_until(lambda: any(s.get("config") == {"version": "2026-11-23.1", "state": "applied"} for s in watcher.statuses), 10)
    finally:
        stop(agent, thread)
    state_file = tmp_path / "state" / "remote-config.json"
    assert state_file.stat().st_mode & 0o077 == 0
    # After a restart the last good version is in force at once, and the retained document changes nothing.
    restarted = Agent(config_for(tmp_path, mosquitto.url), clock_state=lambda: None)
    assert restarted.config.poll_interval_s == 0.7
    thread, results = start(restarted)
    try:
        assert wait_until(lambda: results == ["unchanged"], 10), results
    finally:
        stop(restarted, thread)


def test_a_config_pointing_at_a_dead_broker_is_rolled_back_and_reported(tmp_path, mosquitto, watcher):
    agent = Agent(config_for(tmp_path, mosquitto.url, timeout_s=2), clock_state=lambda: None)
    thread, results = start(agent)
    dead = f"mqtt://127.0.0.1:{free_port()}"
    try:
        watcher.publish_config("7", {"mqtt": {"url": dead}})
        assert wait_until(lambda: results[:1] == ["rolled_back"], 15), results
        assert wait_until(lambda: agent.publisher.connected, 15)
        assert agent.config.mqtt.url == mosquitto.url
        # Back on the old broker the retained document arrives again: it is not tried a second time.
        assert wait_until(lambda: results == ["rolled_back", "unchanged"], 10), results
        expected = {"version": None, "state": "rolled_back", "rejected": {"version": "7", "reason": "no broker connection within 2 s; rolled back"}}
        assert wait_until(lambda: any(s.get("config") == expected for s in watcher.statuses), 10), watcher.statuses[-1:]
    finally:
        stop(agent, thread)
    state = load_state(tmp_path / "state" / "remote-config.json")
    assert (state.applied, state.last_seen, state.outcome, state.pending) == (None, "7", "rolled_back", None)


def test_a_move_to_another_broker_is_applied_when_that_broker_answers(tmp_path, mosquitto, mosquitto_factory, watcher):
    other = mosquitto_factory()
    on_other = Watcher(other)
    agent = Agent(config_for(tmp_path, mosquitto.url), clock_state=lambda: None)
    thread, results = start(agent)
    try:
        watcher.publish_config("8", {"mqtt": {"url": other.url}})
        assert wait_until(lambda: results[:1] == ["applied"], 15), results
        assert set(results[1:]) <= {"unchanged"}, results
        assert agent.publisher.connected and agent.config.mqtt.url == other.url
        assert wait_until(lambda: any(s.get("config") == {"version": "8", "state": "applied"} for s in on_other.statuses), 10)
    finally:
        stop(agent, thread)
        on_other.close()


# -- without a broker ---------------------------------------------------------------------------------


def fake_agent(tmp_path: Path) -> Agent:
    return Agent(config_for(tmp_path, "mqtt://127.0.0.1:1"), client_factory=lambda config: FakeMqttClient(), clock_state=lambda: None)


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"unit": "SE2321000016-OTHER"}, "unit cannot be set remotely"),
        ({"mqtt": {"password": "hemligt"}}, "mqtt.password cannot be sent over MQTT"),
        ({"publisher": {"batch_events": 0}}, "publisher.batch_events"),
        ({"connectors": [{"type": "callback_csv"}]}, "folder"),
    ],
)
def test_a_document_that_cannot_be_applied_is_refused_and_remembered(tmp_path, overrides, reason):
    agent = fake_agent(tmp_path)
    payload = json.dumps({"v": 1, "version": "3", "config": overrides}).encode()
    assert agent.apply_remote(payload) == "refused"
    assert agent.remote_state.rejected_version == "3" and reason in agent.remote_state.rejected_reason
    assert "hemligt" not in (tmp_path / "state" / "remote-config.json").read_text()
    assert agent.apply_remote(payload) == "unchanged"
    agent.outbox.close()


def test_a_trial_cut_short_by_a_restart_counts_as_rolled_back(tmp_path):
    state_file = tmp_path / "state" / "remote-config.json"
    good = RemoteConfig("4", {"poll_interval_s": 0.9})
    save_state(state_file, RemoteState(applied=good, last_seen="4", outcome="applied", pending=RemoteConfig("5", {"poll_interval_s": 3.0})))
    agent = fake_agent(tmp_path)
    assert agent.config.poll_interval_s == 0.9
    assert agent.remote_state.status() == {
        "version": "4",
        "state": "rolled_back",
        "rejected": {"version": "5", "reason": "the collector stopped while trying this version"},
    }
    assert load_state(state_file).pending is None
    agent.outbox.close()


def test_the_admin_command_publishes_a_version_the_running_collector_applies(tmp_path, mosquitto, monkeypatch):
    from typer.testing import CliRunner

    from vardkoll.admin_cli import admin_app
    from vardkoll.cli import app

    monkeypatch.setenv("VARDKOLL_MQTT_URL", mosquitto.url)
    monkeypatch.setenv("VARDKOLL_DATABASE_URL", f"sqlite:///{tmp_path / 'server.db'}")
    assert CliRunner().invoke(app, ["migrate"]).exit_code == 0
    for registration in (["units", "add", UNIT, "--name", "Vårdcentralen Test", "--region", "Region Test"], ["devices", "add", UNIT, DEVICE]):
        assert CliRunner().invoke(admin_app, registration, catch_exceptions=False).exit_code == 0
    sections = tmp_path / "remote.toml"
    sections.write_text("poll_interval_s = 0.9\n[publisher]\nmax_events_per_s = 50\n")
    agent = Agent(config_for(tmp_path, mosquitto.url), clock_state=lambda: None)
    thread, results = start(agent)
    try:
        pushed = CliRunner().invoke(admin_app, ["devices", "push-config", UNIT, DEVICE, str(sections), "--version", "9"], catch_exceptions=False)
        assert pushed.exit_code == 0, pushed.output
        assert f"published config version 9 for device {DEVICE} of {UNIT} (retained on vardkoll/v1/{UNIT}/{DEVICE}/config)" in pushed.output
        assert wait_until(lambda: results[:1] == ["applied"], 15), results
        assert set(results[1:]) <= {"unchanged"}, results
        assert agent.config.poll_interval_s == 0.9 and agent.config.publisher.max_events_per_s == 50
    finally:
        stop(agent, thread)
    again = CliRunner().invoke(admin_app, ["devices", "push-config", UNIT, DEVICE, str(sections), "--version", "9"], catch_exceptions=False)
    assert again.exit_code == 2 and "version 9 is already the last one pushed" in again.output
    history = CliRunner().invoke(admin_app, ["devices", "config", UNIT, DEVICE], catch_exceptions=False)
    assert history.exit_code == 0 and "9\t" in history.output and "vardkoll admin" in history.output
    sections.write_text('unit = "SE2321000016-OTHER"\n')
    bad = CliRunner().invoke(admin_app, ["devices", "push-config", UNIT, DEVICE, str(sections), "--version", "11"], catch_exceptions=False)
    assert bad.exit_code == 2 and "unit cannot be set remotely" in bad.output


def test_a_remote_version_keeps_the_local_password_connectors_and_everything_it_does_not_set(tmp_path):
    from vardkoll.collector.remote_config import merge

    local = CollectorConfig(
        unit=UNIT,
        device=DEVICE,
        mqtt={"url": "mqtts://broker.example:8883", "username": "u", "password": "hemligt-123"},
        outbox={"path": tmp_path / "outbox.db"},
        connectors=[{"type": "callback_csv", "name": "export", "folder": str(tmp_path)}],
    )
    merged = merge(local, RemoteConfig("4", {"publisher": {"batch_events": 100}, "mqtt": {"keepalive_s": 60}}))
    assert merged.mqtt.password_value() == "hemligt-123" and merged.mqtt.keepalive_s == 60 and merged.mqtt.url == local.mqtt.url
    assert merged.publisher.batch_events == 100 and merged.publisher.max_events_per_s == local.publisher.max_events_per_s
    assert merged.connectors == local.connectors and merged.connectors[0].settings == {"folder": str(tmp_path)}
    assert merged.outbox == local.outbox and merged.clock == local.clock
