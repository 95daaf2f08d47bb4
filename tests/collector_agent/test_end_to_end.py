"""Collector → real Mosquitto → the server's MQTT consumer: figures equal `replay` of what the collector
produced, and a broker killed mid-drain loses and doubles nothing."""

from __future__ import annotations

import shutil
import threading
from datetime import date
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig, ConnectorEntry
from vardkoll.server.metrics import Period
from vardkoll.server.replay import replay_path
from vardkoll.server.services import build_consumer, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.tables import StoredEvent

from support import wait_until
from .events import DEVICE, UNIT, offered_many
from .test_callback_csv import FIXTURE, FIXTURE_COLUMNS


@pytest.fixture
def server(database_url, mosquitto):
    services = build_services(ServerSettings(database_url=database_url, mqtt_url=mosquitto.url, dev=True), apply_migrations=True)
    consumer = build_consumer(services, client_id="test-server")
    consumer.start()
    assert consumer.connected.wait(10)
    yield services
    consumer.stop()


def collector_config(tmp_path: Path, broker, exports: Path | None = None, **publisher) -> CollectorConfig:
    connectors = [ConnectorEntry(type="callback_csv", folder=str(exports), settle_s=0, columns=FIXTURE_COLUMNS)] if exports else []
    return CollectorConfig(
        unit=UNIT,
        device=DEVICE,
        poll_interval_s=0.2,
        mqtt={"url": broker.url},
        outbox={"path": tmp_path / "state" / "outbox.db"},
        pseudonyms={"secret_file": tmp_path / "state" / "pseudonym.key"},
        publisher={"start_jitter_s": 0.5, "resend_after_s": 2, "max_resend_after_s": 4, "heartbeat_interval_s": 1, **publisher},
        connectors=connectors,
    )


def run_in_thread(agent: Agent) -> threading.Thread:
    thread = threading.Thread(target=agent.run, kwargs={"install_signal_handlers": False}, daemon=True)
    thread.start()
    return thread


def stored_events(services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(StoredEvent))


def test_a_callback_export_read_by_the_collector_gives_the_figures_replay_gives(tmp_path, server, mosquitto):
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(FIXTURE, exports / FIXTURE.name)
    agent = Agent(collector_config(tmp_path, mosquitto, exports), clock_state=lambda: None)
    assert agent.collect_once().added == 20
    dump = tmp_path / "produced.jsonl"
    with open(dump, "wb") as stream:
        assert agent.outbox.dump_jsonl(stream) == 20
    thread = run_in_thread(agent)
    try:
        assert wait_until(lambda: agent.outbox.stats().committed == 20, 30), agent.outbox.stats()
    finally:
        agent.stop()
        thread.join(10)
    assert stored_events(server) == 20
    replayed = replay_path(dump)
    assert replayed["rejected"] == [] and replayed["duplicates"] == 0
    telephone = next(r for r in replayed["results"] if r["metric"] == "telephone")
    assert (telephone["denominator"], telephone["details"]["rejected"]) == (7, 2)  # the hidden queue is counted
    for expected in replayed["results"]:
        period = Period(date.fromisoformat(expected["from"]), date.fromisoformat(expected["to"]))
        figure = server.figures.figure(expected["unit"], expected["metric"], period)
        figure.pop("definition_version"), figure.pop("data")
        assert figure == expected


def test_the_broker_killed_mid_drain_and_restarted_every_event_arrives_exactly_once(tmp_path, server, mosquitto):
    total = 3000
    agent = Agent(collector_config(tmp_path, mosquitto, batch_events=100, max_events_per_s=1000, max_inflight_batches=4), clock_state=lambda: None)
    agent.outbox.add(offered_many(total))
    thread = run_in_thread(agent)
    try:
        assert wait_until(lambda: agent.outbox.stats().committed >= 300, 30)
        mosquitto.kill()
        killed_at = agent.outbox.stats().committed
        assert killed_at < total, "drain finished before the broker was killed; slow it down"
        wait_until(lambda: not agent.publisher.connected, 10)
        mosquitto.start()
        assert wait_until(lambda: agent.outbox.stats().depth == 0, 90), agent.outbox.stats()
    finally:
        agent.stop()
        thread.join(10)
    assert stored_events(server) == total
    stats = agent.publisher.stats
    assert stats.connects >= 2


def test_the_retained_status_says_online_with_a_heartbeat_then_offline_after_stop(tmp_path, server, mosquitto):
    agent = Agent(collector_config(tmp_path, mosquitto), clock_state=lambda: True)
    agent.outbox.add(offered_many(5))
    thread = run_in_thread(agent)
    try:
        assert wait_until(lambda: _device_row(server) is not None and _device_row(server).last_status is not None, 20)
        beat = orjson.loads(_device_row(server).last_status)
        assert beat["clock"]["ntp_synced"] is True and beat["clock"]["state"] == "ok" and "depth" in beat["outbox"]
    finally:
        agent.stop()
        thread.join(10)
    assert wait_until(lambda: _device_row(server).status == "offline", 10)


def _device_row(services):
    from vardkoll.server.storage.registry_tables import DeviceRow

    with services.sessions() as session:
        return session.get(DeviceRow, (UNIT, DEVICE))
