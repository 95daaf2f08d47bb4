"""Capacity per server process on PostgreSQL: events/s through a real Mosquitto into the database with
figures' state updated, with one and with two `vardkoll server` processes sharing the subscription (as
the systemd slots run them), each round on a fresh database. The ratio says how far a second process
helps on this machine (docs/operations.md, "Scaling"; results in docs/benchmarks.md).

    .venv/bin/python bench/server_processes.py [--events 100000] [--batch 500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench_common import machine, throwaway_postgres_databases
from ingest import batches, publish_all
from vardkoll.demo.broker import start_broker
from vardkoll.protocol.topics import ack_topic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import free_port  # noqa: E402  (the tests' helpers)


def vardkoll_exe() -> str:
    return shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))


def run(processes: int, port: int, url: str, work: list[tuple[str, bytes, int]]) -> float:
    env = {**os.environ, "VARDKOLL_DATABASE_URL": url, "VARDKOLL_MQTT_URL": f"mqtt://127.0.0.1:{port}", "VARDKOLL_DEV": "1", "VARDKOLL_LOG_LEVEL": "WARNING"}
    subprocess.run([vardkoll_exe(), "migrate"], env=env, check=True, capture_output=True)
    servers = []
    for slot in range(processes):
        http_port = free_port()
        servers.append(
            (
                http_port,
                subprocess.Popen(
                    [vardkoll_exe(), "server", "--port", str(http_port)],
                    env={**env, "VARDKOLL_INSTANCE": f"bench-{slot}"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            )
        )
    try:
        for http_port, _ in servers:
            deadline = time.monotonic() + 60
            while not _ready(http_port):
                if time.monotonic() > deadline:
                    raise TimeoutError("a server did not become ready")
                time.sleep(0.3)
        total = sum(n for _, _, n in work)
        acknowledged = [0]
        done = threading.Event()

        def on_ack(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            acknowledged[0] += len(orjson.loads(message.payload)["committed"])
            if acknowledged[0] >= total:
                done.set()

        listener = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        listener.on_message = on_ack
        listener.connect("127.0.0.1", port)
        listener.subscribe(ack_topic("+", "+"), qos=1)
        listener.loop_start()
        time.sleep(0.5)
        started = time.perf_counter()
        publish_all(port, work)
        finished = done.wait(900)
        elapsed = time.perf_counter() - started
        listener.loop_stop()
        if not finished:
            raise TimeoutError(f"{acknowledged[0]} of {total} events acknowledged within 900 s")
        return total / elapsed
    finally:
        for _, process in servers:
            process.terminate()
        for _, process in servers:
            process.wait(30)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = batches(args.events, args.batch)
    print(f"events {sum(n for _, _, n in work):,} in batches of {args.batch}, PostgreSQL; {machine()}")
    rates: dict[int, list[float]] = {1: [], 2: []}
    with throwaway_postgres_databases(2 * args.repeat) as urls:
        pending = iter(urls)
        for _ in range(args.repeat):
            for processes in (1, 2):
                broker = start_broker()
                try:
                    rate = run(processes, broker.port, next(pending), work)
                finally:
                    broker.stop()
                rates[processes].append(rate)
                print(f"  {processes} process{'es' if processes > 1 else ''}: {rate:,.0f} events/s", flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median: 1 process {one:,.0f} events/s, 2 processes {two:,.0f} events/s, ratio {two / one:.2f}; {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
