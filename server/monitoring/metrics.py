"""The process's Prometheus metrics.

Counters and the commit histogram are process-wide (one registry per process; Prometheus adds the
processes up). What is a state rather than a count (open live streams, connections in use, the broker
connection, silent devices) is read when scraped, from the `StateProbe` each running app registers.

Labels are small fixed sets: a refusal's reason is sorted into a kind (`refusal_kind`), never put in
a label as text, which would quote units, devices and field names without end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # memory, CPU, open files of this process
PlatformCollector(registry=REGISTRY)

EVENTS_INGESTED = Counter("vardkoll_events_ingested", "Events stored for the first time", ["transport"], registry=REGISTRY)
EVENTS_DUPLICATE = Counter("vardkoll_events_duplicate", "Events received again (stored before; counted once)", ["transport"], registry=REGISTRY)
EVENTS_REFUSED = Counter(
    "vardkoll_events_refused", "Events refused, by kind of reason (the reasons are in the dead letters)", ["transport", "reason"], registry=REGISTRY
)
PAYLOADS_REFUSED = Counter(
    "vardkoll_payloads_refused", "Whole payloads refused before any event was read, by kind of reason", ["transport", "reason"], registry=REGISTRY
)
BATCHES_ACKED = Counter("vardkoll_batches_acked", "MQTT batches answered on the device's ack topic", ["outcome"], registry=REGISTRY)
COMMIT_SECONDS = Histogram(
    "vardkoll_ingest_commit_seconds",
    "Time to commit one group of batches (events, metric state, dead letters)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
JOB_RUNS = Counter("vardkoll_job_runs", "Scheduled job runs in this process (only the lease holder runs jobs)", ["job", "outcome"], registry=REGISTRY)
JOB_LAST_SUCCESS = Gauge(
    "vardkoll_job_last_success_timestamp_seconds", "When a job last finished without error in this process (Unix time)", ["job"], registry=REGISTRY
)

REFUSAL_KINDS = ("personal_number", "too_large", "malformed", "invalid", "wrong_unit", "wrong_device", "unregistered_device", "conflicting_id", "unit_unknown")


def refusal_kind(reason: str) -> str:
    """Sort a refusal's text (the one the sender and the dead letters get) into one of REFUSAL_KINDS."""
    text = reason.lower()
    if "personal identity number" in text:
        return "personal_number"
    if "larger than" in text or "over the limit" in text or ("at most" in text and "events" in text):
        return "too_large"
    if "not valid json" in text or "must be an object" in text or "too deep" in text or "cannot be read" in text:
        return "malformed"
    if "sent by a device of unit" in text:
        return "wrong_unit"
    if "names device" in text:
        return "wrong_device"
    if "is not registered" in text:
        return "unregistered_device"
    if "already used by a different event" in text:
        return "conflicting_id"
    if "unknown unit" in text:
        return "unit_unknown"
    return "invalid"


def count_ingest(transport: str, new: int, duplicates: int, refusals: Iterable[str]) -> None:
    if new:
        EVENTS_INGESTED.labels(transport).inc(new)
    if duplicates:
        EVENTS_DUPLICATE.labels(transport).inc(duplicates)
    for reason in refusals:
        EVENTS_REFUSED.labels(transport, refusal_kind(reason)).inc()


def count_payload_refused(transport: str, reason: str) -> None:
    PAYLOADS_REFUSED.labels(transport, refusal_kind(reason)).inc()


def count_batch_acked(outcome: str, batches: int = 1) -> None:
    BATCHES_ACKED.labels(outcome).inc(batches)


def count_job_run(job: str, outcome: str, finished_at: float | None = None) -> None:
    JOB_RUNS.labels(job, outcome).inc()
    if outcome == "done":
        JOB_LAST_SUCCESS.labels(job).set(finished_at or time.time())


@contextmanager
def time_commit() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        COMMIT_SECONDS.observe(time.perf_counter() - started)


@dataclass
class StateProbe:
    """How to read one running app's state at scrape time; each callable answers None when it cannot."""

    live_streams: Callable[[], int]
    pool_in_use: Callable[[], int | None]
    broker_connected: Callable[[], bool | None]  # None: this app runs no MQTT consumer
    silent_devices: Callable[[], int | None]

    def register(self) -> "StateProbe":
        with _probes_lock:
            _probes.append(self)
        return self

    def unregister(self) -> None:
        with _probes_lock:
            if self in _probes:
                _probes.remove(self)


_probes: list[StateProbe] = []
_probes_lock = threading.Lock()


class _StateCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        with _probes_lock:
            probes = list(_probes)
        streams = GaugeMetricFamily("vardkoll_live_streams_open", "Live connections (server-sent events) open in this process")
        pool = GaugeMetricFamily("vardkoll_db_pool_in_use", "Database connections checked out of this process's pool")
        broker = GaugeMetricFamily("vardkoll_broker_connected", "1 while this process's MQTT consumer is connected to the broker")
        silent = GaugeMetricFamily("vardkoll_devices_silent", "Active devices the silent-collector job marked silent (read from the database)")
        streams.add_metric([], sum(probe.live_streams() for probe in probes))
        in_use = [n for n in (probe.pool_in_use() for probe in probes) if n is not None]
        pool.add_metric([], sum(in_use))
        states = [state for state in (probe.broker_connected() for probe in probes) if state is not None]
        if states:
            broker.add_metric([], 1.0 if all(states) else 0.0)
        counts = [n for n in (probe.silent_devices() for probe in probes[:1]) if n is not None]
        if counts:
            silent.add_metric([], counts[0])
        return [streams, pool, broker, silent]


REGISTRY.register(_StateCollector())
