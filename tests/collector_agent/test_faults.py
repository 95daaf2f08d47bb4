"""Fault tests with real processes: a collector process (`vardkoll collector run`), a real Mosquitto with
persistence, and the server's MQTT ingest consumer on SQLite (SPEC 6, "Fault tests").

In each: every event arrives exactly once (distinct ids stored equal the events the collector held; what
was sent twice was counted as a duplicate, not again), and the server's figures equal `replay` of the same
events. The cut network is a Mosquitto frozen with SIGSTOP for OUTAGE_S seconds: no packets answered, no
connection refused, as with a pulled cable. A real outage lasts minutes or days; the code path is the
same (keepalive timeout, paho's reconnect with back-off up to 60 s, outbox keeps everything), only the
wait is shorter.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from datetime import date
from pathlib import Path

import msgspec
import orjson
import pytest
from sqlalchemy import select

from support import wait_until
from vardkoll.collector.agent import Agent
from vardkoll.collector.config import ConnectorEntry, load_config
from vardkoll.collector.outbox import Outbox
from vardkoll.server.metrics import Period
from vardkoll.server.replay import replay_path
from vardkoll.server.services import build_consumer, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import DeviceRow
from vardkoll.server.storage.tables import StoredEvent

from .collector_process import EXAMPLE_DEVICE, EXAMPLE_UNIT, CollectorProcess, example_events, outbox_counters, outbox_ids, write_config
from .fakes import FakeMqttClient
from .test_callback_csv import FIXTURE, FIXTURE_COLUMNS

OUTAGE_S = 12
DRAIN = {"batch_events": 100, "max_events_per_s": 800, "max_inflight_batches": 4}


class CountingServer:
    """The server's ingest consumer, counting what it was sent: new events and duplicates."""

    def __init__(self, database_url: str, broker_url: str) -> None:
        self.services = build_services(ServerSettings(database_url=database_url, mqtt_url=broker_url, dev=True), apply_migrations=True)
        self.new = self.duplicates = 0
        ingest_many = self.services.ingest.ingest_many  # the consumer commits queued batches together

        def counting(*args, **kwargs):
            reports = ingest_many(*args, **kwargs)
            self.new += sum(report.new for report in reports)
            self.duplicates += sum(report.duplicates for report in reports)
            return reports

        self.services.ingest.ingest_many = counting
        self.consumer = build_consumer(self.services, client_id="test-server")

    def stored_ids(self) -> set[str]:
        with self.services.sessions() as session:
            return set(session.scalars(select(StoredEvent.event_id)))

    def stored(self) -> int:
        return len(self.stored_ids())

    def heartbeat(self) -> dict | None:
        with self.services.sessions() as session:
            row = session.get(DeviceRow, (EXAMPLE_UNIT, EXAMPLE_DEVICE))
            return orjson.loads(row.last_status) if row is not None and row.last_status else None

    def assert_figures_equal_replay_of(self, archive: Path) -> None:
        expected = replay_path(archive)
        assert expected["rejected"] == [] and expected["results"]
        for want in expected["results"]:
            period = Period(date.fromisoformat(want["from"]), date.fromisoformat(want["to"]))
            got = self.services.figures.figure(want["unit"], want["metric"], period)
            got.pop("definition_version"), got.pop("data")
            assert got == want


@pytest.fixture
def server(tmp_path, mosquitto):
    server = CountingServer(f"sqlite:///{tmp_path / 'server.db'}", mosquitto.url)
    server.consumer.start()
    assert server.consumer.connected.wait(10)
    yield server
    server.consumer.stop()


def filled_collector(tmp_path: Path, broker_url: str, count: int, **config) -> tuple[CollectorProcess, Path, Path]:
    """A collector config whose outbox already holds `count` events (as after an outage), and the archive
    of exactly those events (what `replay` reads)."""
    state = tmp_path / "collector"
    path = write_config(state, broker_url, **config)
    outbox = Outbox(state / "outbox.db", unit=EXAMPLE_UNIT, device=EXAMPLE_DEVICE)
    assert outbox.add(example_events(count)).added == count
    archive = tmp_path / "sent.jsonl"
    with open(archive, "wb") as stream:
        assert outbox.dump_jsonl(stream) == count
    outbox.close()
    return CollectorProcess(path), state / "outbox.db", archive


def drained(server: CountingServer, outbox: Path, total: int) -> bool:
    return server.stored() == total and outbox_counters(outbox).get("events") == 0


def test_collector_killed_minus_nine_mid_drain_then_restarted_every_event_arrives_exactly_once(tmp_path, server, mosquitto):
    total = 3000
    collector, outbox, archive = filled_collector(tmp_path, mosquitto.url, total, publisher=DRAIN)
    collector.start()
    try:
        assert wait_until(lambda: server.stored() >= 600, 30), collector.log()
        collector.kill()
        stored_at_kill = server.stored_ids()
        assert len(stored_at_kill) < total, "the drain ended before the kill; slow it down"
        # Committed on the server but not yet deleted here: these go again after the restart.
        sent_twice = outbox_ids(outbox) & stored_at_kill
        collector.start()
        assert wait_until(lambda: drained(server, outbox, total), 60), (server.stored(), outbox_counters(outbox), collector.log()[-3000:])
    finally:
        assert collector.stop() == 0
    assert (server.stored(), server.new) == (total, total)
    assert server.duplicates >= len(sent_twice)
    assert outbox_counters(outbox)["committed"] == total
    server.assert_figures_equal_replay_of(archive)


def test_broker_killed_minus_nine_mid_stream_and_restarted_every_event_arrives_exactly_once(tmp_path, server, mosquitto):
    total = 3000
    collector, outbox, archive = filled_collector(tmp_path, mosquitto.url, total, publisher=DRAIN)
    collector.start()
    try:
        assert wait_until(lambda: server.stored() >= 600, 30), collector.log()
        mosquitto.kill()  # no persistence file written: in-flight QoS 1 state is lost, as in a crash
        assert server.stored() < total, "the drain ended before the kill; slow it down"
        time.sleep(1)
        mosquitto.start()
        assert wait_until(lambda: drained(server, outbox, total), 90), (server.stored(), outbox_counters(outbox), collector.log()[-3000:])
    finally:
        assert collector.stop() == 0
    assert (server.stored(), server.new) == (total, total)
    assert collector.log().count("connected to") >= 2
    server.assert_figures_equal_replay_of(archive)


def test_a_cut_network_keeps_what_is_collected_meanwhile_and_delivers_everything_once_afterwards(tmp_path, server, mosquitto):
    total = 2000
    exports = tmp_path / "exports"
    exports.mkdir()
    csv = {"type": "callback_csv", "folder": exports, "settle_s": 0, "columns": FIXTURE_COLUMNS}
    collector, outbox, archive = filled_collector(tmp_path, mosquitto.url, total, publisher=DRAIN, connectors=[csv])
    collected_offline = _events_of_the_export(collector.config, tmp_path / "scratch")
    with open(archive, "ab") as stream:
        stream.write(collected_offline.read_bytes())
    expected = total + sum(1 for _ in collected_offline.open())
    collector.start()
    try:
        assert wait_until(lambda: server.stored() >= 400, 30), collector.log()
        os.kill(mosquitto.pid, signal.SIGSTOP)  # the network is cut: nothing answers, nothing refuses
        try:
            frozen_at = server.stored()
            shutil.copy(FIXTURE, exports / FIXTURE.name)  # the clinic keeps working meanwhile
            cut_at = time.monotonic()
            assert wait_until(lambda: outbox_counters(outbox).get("added", 0) == expected, 10), "the export was not collected while offline"
            # Long enough for the collector to notice (keepalive), however loaded the machine is.
            assert wait_until(lambda: "lost the broker" in collector.log(), 60), collector.log()[-3000:]
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
            assert server.stored() == frozen_at < total
        finally:
            os.kill(mosquitto.pid, signal.SIGCONT)
        assert wait_until(lambda: drained(server, outbox, expected), 90), (server.stored(), outbox_counters(outbox), collector.log()[-3000:])
    finally:
        assert collector.stop() == 0
    assert (server.stored(), server.new) == (expected, expected)
    assert collector.log().count("connected to") >= 2
    server.assert_figures_equal_replay_of(archive)


def test_a_full_outbox_budget_drops_the_oldest_and_says_so_in_the_log_and_the_heartbeat(tmp_path, server, mosquitto):
    exports = tmp_path / "exports"
    exports.mkdir()
    csv = {"type": "callback_csv", "folder": exports, "settle_s": 0, "columns": FIXTURE_COLUMNS}
    path = write_config(tmp_path / "collector", mosquitto.url, outbox={"max_events": 12}, connectors=[csv])
    produced = _events_of_the_export(path, tmp_path / "scratch")
    ids = [orjson.loads(line)["id"] for line in produced.read_bytes().splitlines()]
    assert len(ids) == 20
    shutil.copy(FIXTURE, exports / FIXTURE.name)
    collector = CollectorProcess(path).start()
    try:
        assert wait_until(lambda: server.stored() == 12 and (server.heartbeat() or {}).get("outbox", {}).get("depth") == 0, 30), collector.log()
    finally:
        assert collector.stop() == 0
    assert server.stored_ids() == set(ids[8:])  # the newest twelve; the eight oldest were dropped
    beat = server.heartbeat()  # the last one before `offline`: the server keeps it for the installer view
    assert beat["outbox"]["dropped"] == 8 and beat["outbox"]["drop_policy"] == "drop_oldest"
    assert "outbox full: 8 event(s) dropped (drop_oldest)" in collector.log()
    assert outbox_counters(tmp_path / "collector" / "outbox.db")["dropped"] == 8


def _events_of_the_export(config_path: Path, scratch: Path) -> Path:
    """The events a collector with this config (and its secret) makes from the fixture export, read in a
    scratch outbox with no broker: the same pseudonyms and ids the collector process will make."""
    config = load_config(config_path)
    folder = scratch / "exports"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE, folder / FIXTURE.name)
    connectors = [ConnectorEntry(type=entry.type, **{**entry.settings, "folder": str(folder)}) for entry in config.connectors]
    outbox = msgspec.structs.replace(config.outbox, path=scratch / "outbox.db", max_events=10_000)
    scratch_config = msgspec.structs.replace(config, outbox=outbox, connectors=connectors)
    agent = Agent(scratch_config, client=FakeMqttClient(), clock_state=lambda: None)
    assert agent.collect_once().added == 20
    produced = scratch / "produced.jsonl"
    with open(produced, "wb") as stream:
        agent.outbox.dump_jsonl(stream)
    agent.outbox.close()
    return produced
