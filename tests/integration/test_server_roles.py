"""A web slot (`VARDKOLL_CONSUME_MQTT=false`, `VARDKOLL_RUN_JOBS=false`) beside an ingest slot, as
docs/operations.md ("Scaling") deploys them: the web slot takes no events and no job lease, yet its API
and its live stream show what the ingest slot commits, equal to replay."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx
import orjson
import pytest

from support import wait_until
from vardkoll.server.jobs import current_holder
from vardkoll.server.jobs.settings import LEASE_NAME
from vardkoll.server.replay import replay_path
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings

from .test_server_crash import ServerProcess, Stream, assert_every_event_once_and_figures_equal_replay

ADMIN = "roles-test-Admin-token-0123456789"
BOTH = {"VARDKOLL_ADMIN_TOKEN": ADMIN}
WEB_SLOT = {**BOTH, "VARDKOLL_CONSUME_MQTT": "false", "VARDKOLL_RUN_JOBS": "false"}
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
pytestmark = pytest.mark.postgresql


def lease_holder(database_url: str) -> str | None:
    services = build_services(ServerSettings(database_url=database_url, dev=True))
    try:
        return current_holder(services.sessions, LEASE_NAME, datetime.now(timezone.utc))
    finally:
        services.engine.dispose()


def figures_events(response: httpx.Response):
    """The data of each `figures` event of a live stream, as they come."""
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "figures":
            yield orjson.loads(line[6:])


def test_a_web_slot_serves_live_figures_of_what_the_ingest_slot_commits_and_runs_no_jobs(postgres_database_url, mosquitto, tmp_path):
    web = ServerProcess(postgres_database_url, mosquitto.url, WEB_SLOT).start()
    ingest: ServerProcess | None = None
    try:
        health = httpx.get(f"{web.url}/api/v1/health").json()
        assert health["status"] == "ok" and "broker" not in health
        assert httpx.get(f"{web.url}/api/v1/health/ready").json()["broker"] == "not_consuming"
        time.sleep(3)  # the lease is taken within a second of a jobs runner's start
        assert lease_holder(postgres_database_url) is None, "the web slot competes for the job lease"

        stream = Stream(mosquitto.port, tmp_path / "sent.jsonl", 3_000, resend_after_s=5)
        expected = replay_path(stream.archive)
        unit = next(iter(stream.per_unit))
        want = next(r for r in expected["results"] if r["unit"] == unit and r["metric"] == "telephone")
        params = {"unit": unit, "metric": "telephone", "from": want["from"], "to": want["to"]}
        with httpx.stream("GET", f"{web.url}/api/v1/live", params=params, headers=HEADERS, timeout=30) as response:
            assert response.status_code == 200
            updates = figures_events(response)
            assert next(updates)[0]["data"]["no_data"] is True

            ingest = ServerProcess(postgres_database_url, mosquitto.url, BOTH).start()
            assert wait_until(lambda: f":{ingest.process.pid}:" in (lease_holder(postgres_database_url) or ""), 15), "the ingest slot runs the jobs"
            with stream:
                assert stream.wait_until_done(60), f"{stream.count - stream.acknowledged} events unacknowledged"
            deadline = time.monotonic() + 15
            while (latest := next(updates)[0])["denominator"] != want["denominator"]:
                assert time.monotonic() < deadline, f"the web slot's live figure stayed at {latest['denominator']} calls, not {want['denominator']}"
        assert (latest["numerator"], latest["share"]) == (want["numerator"], want["share"])
        assert_every_event_once_and_figures_equal_replay(postgres_database_url, stream)
        answered = httpx.get(f"{web.url}/api/v1/units/{unit}/compliance", params={k: v for k, v in params.items() if k != "unit"}, headers=HEADERS).json()
        assert (answered["numerator"], answered["denominator"]) == (want["numerator"], want["denominator"])
    finally:
        for server in (ingest, web):
            if server is not None:
                server.stop()
