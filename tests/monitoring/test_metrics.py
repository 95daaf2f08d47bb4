"""`/metrics` during real traffic: the counters move by what was sent, and only a token opens it."""

from __future__ import annotations

import logging
import re
import secrets

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from fastapi.testclient import TestClient

from support.memory_collector import DemoCollector
from vardkoll.protocol.topics import events_topic
from vardkoll.server.app import create_app
from vardkoll.server.monitoring.logs import JsonFormatter, RequestIdFilter
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings

from integration.mqtt_helpers import pump, wait_until

UNIT = "SE2321000016-MT01"
METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(24)
ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus's text format (0 when it is not there yet)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match and (match.group(1) or "") == wanted:
            return float(match.group(2))
    return 0.0


def _event(n: int, **extra: object) -> dict:
    return {"v": 1, "id": f"mt-{n}", "type": "call.offered", "unit": UNIT, "at": f"2026-03-02T08:{n % 60:02d}:00+01:00", "call": f"call-mt{n:04d}", **extra}


@pytest.fixture
def client(tmp_path, mosquitto):
    settings = ServerSettings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", mqtt_url=mosquitto.url, dev=True, metrics_token=METRICS_TOKEN, admin_token=ADMIN_TOKEN
    )
    with TestClient(create_app(settings, build_services(settings, apply_migrations=True))) as client:
        assert wait_until(lambda: client.app.state.consumer.connected.is_set(), 10)
        yield client


def test_counters_move_with_the_traffic(client, mosquitto):
    before = client.get("/metrics").text
    assert _sample(before, "vardkoll_broker_connected") == 1
    collector = DemoCollector(UNIT, "dev-mt", mosquitto.port, True, resend_after_s=3, batch_events=10)
    collector.start()
    try:
        good = [_event(n) for n in range(40)]
        collector.send(good)
        assert pump([collector], lambda: collector.waiting == 0, 30)
        collector.send(good[:10])  # ten sent again
        assert pump([collector], lambda: collector.waiting == 0, 30)
    finally:
        collector.stop()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    publisher.publish(
        events_topic(UNIT, "dev-mt"), orjson.dumps({"device": "dev-mt", "events": [_event(99, queue="ring 19121212-1212")]}), qos=1
    ).wait_for_publish(10)
    publisher.publish(events_topic(UNIT, "dev-mt"), b"not json", qos=1).wait_for_publish(10)
    publisher.loop_stop()
    assert wait_until(lambda: _sample(client.get("/metrics").text, "vardkoll_events_refused_total", transport="mqtt", reason="personal_number") > 0, 10)
    assert wait_until(lambda: _sample(client.get("/metrics").text, "vardkoll_payloads_refused_total", transport="mqtt", reason="malformed") > 0, 10)
    after = client.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert moved("vardkoll_events_ingested_total", transport="mqtt") == 40
    assert moved("vardkoll_events_duplicate_total", transport="mqtt") == 10
    assert moved("vardkoll_events_refused_total", transport="mqtt", reason="personal_number") == 1
    assert moved("vardkoll_payloads_refused_total", transport="mqtt", reason="malformed") == 1
    assert moved("vardkoll_batches_acked_total", outcome="committed") >= 6  # 51 events in batches of at most 10
    assert moved("vardkoll_batches_acked_total", outcome="refused") == 1
    assert moved("vardkoll_ingest_commit_seconds_count") >= 1
    assert "19121212" not in after


def test_events_over_http_are_counted_under_their_transport(client):
    before = client.get("/metrics").text
    answer = client.post(
        "/api/v1/events",
        content=orjson.dumps([_event(1), _event(2), {**_event(3), "type": "call.unknown"}]),
        headers={"content-type": "application/json", "authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert answer.status_code < 300, answer.text
    after = client.get("/metrics").text
    assert _sample(after, "vardkoll_events_ingested_total", transport="http") - _sample(before, "vardkoll_events_ingested_total", transport="http") == 2
    assert (
        _sample(after, "vardkoll_events_refused_total", transport="http", reason="invalid")
        - _sample(before, "vardkoll_events_refused_total", transport="http", reason="invalid")
        == 1
    )


def test_metrics_need_the_metrics_or_admin_token_outside_dev_mode(tmp_path):
    admin = ADMIN_TOKEN
    settings = ServerSettings(database_url=f"sqlite:///{tmp_path / 'm.db'}", admin_token=admin, metrics_token=METRICS_TOKEN)
    with TestClient(create_app(settings, build_services(settings, apply_migrations=True), background=False)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong-" + secrets.token_urlsafe(24)}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
        assert client.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        ready = client.get("/api/v1/health/ready").json()
        assert ready == {"status": "ok", "database": "ok", "broker": "not_consuming", "version": ready["version"]}
        assert client.get("/api/v1/health/live").status_code == 200


def test_readiness_fails_while_the_broker_is_away(client, mosquitto):
    assert client.get("/api/v1/health/ready").status_code == 200
    mosquitto.stop()
    assert wait_until(lambda: client.get("/api/v1/health/ready").status_code == 503, 10)
    assert client.get("/api/v1/health/ready").json()["broker"] == "disconnected"
    assert _sample(client.get("/metrics").text, "vardkoll_broker_connected") == 0
    assert client.get("/api/v1/health/live").status_code == 200  # alive: no reason to restart it
    mosquitto.start()
    assert wait_until(lambda: client.get("/api/v1/health/ready").status_code == 200, 30)


def test_json_log_lines_carry_the_request_id_and_no_query_string(client, caplog):
    caplog.set_level(logging.INFO, logger="vardkoll.access")
    answer = client.get("/api/v1/health/live?who=19121212-1212", headers={"X-Request-ID": "req-abcdef12"})
    assert answer.headers["x-request-id"] == "req-abcdef12"
    record = next(r for r in caplog.records if r.name == "vardkoll.access" and "/health/live" in r.getMessage())
    RequestIdFilter().filter(record)
    record.request_id = "req-abcdef12"  # the filter ran after the request ended here; in a server it runs inside it
    line = orjson.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-abcdef12"
    assert line["http"]["path"] == "/api/v1/health/live" and line["http"]["status"] == 200
    assert "19121212" not in JsonFormatter().format(record)
    assert client.get("/api/v1/health/live", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"] != "bad id with spaces"


def test_job_runs_failures_and_last_success_are_counted(tmp_path):
    from datetime import datetime, timezone

    from apscheduler.triggers.interval import IntervalTrigger
    from prometheus_client import generate_latest

    from vardkoll.server.jobs import JobRunner, JobSettings, ScheduledJob
    from vardkoll.server.monitoring import REGISTRY

    def broken(now: datetime) -> None:
        raise RuntimeError("a job's own error")

    services = build_services(ServerSettings(database_url=f"sqlite:///{tmp_path / 'j.db'}", dev=True), apply_migrations=True)
    jobs = [
        ScheduledJob("metrics_test_ok", IntervalTrigger(hours=1), lambda now: {"done": 1}),
        ScheduledJob("metrics_test_broken", IntervalTrigger(hours=1), broken),
    ]
    runner = JobRunner(services, JobSettings(), clock=lambda: datetime.now(timezone.utc), jobs=jobs, holder="metrics-test:1:aaaaaaaa")
    before = generate_latest(REGISTRY).decode()
    assert runner.keep_lease()
    runner.run("metrics_test_ok"), runner.run("metrics_test_ok"), runner.run("metrics_test_broken")
    after = generate_latest(REGISTRY).decode()
    assert (
        _sample(after, "vardkoll_job_runs_total", job="metrics_test_ok", outcome="done")
        - _sample(before, "vardkoll_job_runs_total", job="metrics_test_ok", outcome="done")
        == 2
    )
    assert (
        _sample(after, "vardkoll_job_runs_total", job="metrics_test_broken", outcome="failed")
        - _sample(before, "vardkoll_job_runs_total", job="metrics_test_broken", outcome="failed")
        == 1
    )
    assert abs(_sample(after, "vardkoll_job_last_success_timestamp_seconds", job="metrics_test_ok") - datetime.now(timezone.utc).timestamp()) < 60
    assert _sample(after, "vardkoll_job_last_success_timestamp_seconds", job="metrics_test_broken") == 0
    runner.stop()
    services.engine.dispose()
