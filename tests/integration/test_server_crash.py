"""kill -9 of the server in the middle of a stream, then a restart: every event counted exactly once.

The collectors are simulated: they keep every event until the server's committed acknowledgement and
re-send what is not acknowledged, as SPEC 3.3 asks of real ones.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import orjson
from sqlalchemy import func, select

from support import free_port
from vardkoll.demo.collectors import DemoCollector
from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.replay import replay_path
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.tables import StoredEvent

from .mqtt_helpers import pump

EXAMPLE = Path(__file__).parents[2] / "vardkoll" / "examples" / "example-clinics.jsonl.gz"
EVENTS = 12_000


def start_server(database_url: str, broker_url: str, port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
    env = {**os.environ, "VARDKOLL_DATABASE_URL": database_url, "VARDKOLL_MQTT_URL": broker_url, "VARDKOLL_DEV": "1"}
    subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)  # as a deployment does before its servers
    return subprocess.Popen([exe, "server", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill_minus_nine_of_the_server_mid_stream_loses_and_doubles_nothing(database_url, mosquitto, tmp_path):
    lines = gzip.decompress(EXAMPLE.read_bytes()).splitlines()[:EVENTS]
    archive = tmp_path / "sent.jsonl"
    archive.write_bytes(b"\n".join(lines) + b"\n")
    per_unit: defaultdict[str, list[dict]] = defaultdict(list)
    for line in lines:
        event = orjson.loads(line)
        event.pop("device", None)
        per_unit[event["unit"]].append(event)

    port = free_port()
    server = start_server(database_url, mosquitto.url, port)
    collectors = [DemoCollector(unit, f"dev-{unit[-4:].lower()}", mosquitto.port, True, resend_after_s=3, batch_events=200) for unit in per_unit]
    try:
        for collector in collectors:
            collector.start()
        for collector, events in zip(collectors, per_unit.values()):
            collector.send(events)
        assert pump(collectors, lambda: sum(c.acknowledged for c in collectors) > EVENTS // 10, 60), "nothing was acknowledged"
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        acknowledged_before_crash = sum(c.acknowledged for c in collectors)
        assert acknowledged_before_crash < EVENTS, "the stream ended before the crash; make it longer"
        server = start_server(database_url, mosquitto.url, port)
        assert pump(collectors, lambda: all(c.waiting == 0 for c in collectors), 180), "events were never acknowledged"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        for collector in collectors:
            collector.stop()

    expected = replay_path(archive)
    services = build_services(ServerSettings(database_url=database_url, dev=True), apply_migrations=True)
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StoredEvent)) == EVENTS - expected["duplicates"]
    first, last = expected["results"][0]["from"], expected["results"][0]["to"]
    period = Period(date.fromisoformat(first), date.fromisoformat(last))
    for want in expected["results"]:
        got = services.figures.figure(want["unit"], want["metric"], period)
        got.pop("definition_version"), got.pop("data")
        assert got == want
    assert {r["metric"] for r in expected["results"]} == set(METRICS)
