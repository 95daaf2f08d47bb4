"""Open live streams against one server process (SPEC 6, issue 12 item 3): 500 streams held open while
the API still answers.

    .venv/bin/python bench/live_streams.py                 # SQLite, 500 streams
    .venv/bin/python bench/live_streams.py --postgres      # a throwaway PostgreSQL cluster (default pool)
    .venv/bin/python bench/live_streams.py --streams 200

What runs: one `vardkoll server` process (dev mode, loopback) on a fresh database with 10 units; this
process opens the streams (`GET /api/v1/live?unit=U`, today, all four metrics) with one asyncio HTTP
client and waits until each has sent its first figures. Measured, in the same run: the latency of a
plain API call (`GET /api/v1/units`, 50 calls one after another) with no stream open (the baseline),
then with every stream open, and the ratio of the p95s. Before issue 12 a stream held a database
session for its whole life, so 20 streams exhausted the PostgreSQL pool and other requests failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench_common import machine, summary, throwaway_postgres

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-Admin-token-0123456789ab"
UNITS = [f"SE2321000016-BS{n:02d}" for n in range(10)]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def api_latencies_ms(client: httpx.AsyncClient, calls: int = 50) -> list[float]:
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        response = await client.get("/api/v1/units")
        response.raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def hold_stream(client: httpx.AsyncClient, unit: str, opened: asyncio.Event, counter: list[int], total: int) -> None:
    async with client.stream("GET", "/api/v1/live", params={"unit": unit}) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event: figures") and not opened.is_set():
                counter[0] += 1
                if counter[0] == total:
                    opened.set()
                break
        async for _ in response.aiter_lines():  # keep it open until cancelled
            pass


async def measure(base: str, streams: int) -> tuple[dict[str, float], dict[str, float], float]:
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=limits) as api,
        httpx.AsyncClient(base_url=base, headers=headers, timeout=None, limits=limits) as watchers,
    ):
        for unit in UNITS:
            (await api.post("/api/v1/units", json={"unit": unit, "name": f"Bench {unit[-4:]}", "region": "Region Bench"})).raise_for_status()
        await api_latencies_ms(api, 10)  # warm up
        baseline = await api_latencies_ms(api)
        opened, counter = asyncio.Event(), [0]
        started = time.perf_counter()
        tasks = [asyncio.create_task(hold_stream(watchers, UNITS[n % len(UNITS)], opened, counter, streams)) for n in range(streams)]
        await asyncio.wait_for(opened.wait(), 300)
        open_s = time.perf_counter() - started
        loaded = await api_latencies_ms(api)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return summary(baseline), summary(loaded), open_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vardkoll-bench-streams-"))
    try:
        if args.postgres:
            with throwaway_postgres() as url:
                run(url, args.streams, "PostgreSQL")
        else:
            run(f"sqlite:///{folder / 'bench.db'}", args.streams, "SQLite")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(database_url: str, streams: int, backend: str) -> None:
    port = free_port()
    exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
    # No broker: the server serves the API without one (it says so in /health) and the streams need none.
    env = {
        **os.environ,
        "VARDKOLL_DATABASE_URL": database_url,
        "VARDKOLL_DEV": "1",
        "VARDKOLL_ADMIN_TOKEN": TOKEN,
        "VARDKOLL_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
    }
    subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([exe, "server", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/api/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        baseline, loaded, open_s = asyncio.run(measure(base, streams))
    finally:
        server.terminate()
        server.wait(30)
    print(f"live streams, {backend}, {machine()}")
    print(f"{streams} streams open in {open_s:.1f} s")
    for name, values in (("0 streams", baseline), (f"{streams} streams", loaded)):
        print(f"  GET /api/v1/units with {name:>12}: p50 {values['p50']:.1f} ms, p95 {values['p95']:.1f} ms, max {values['max']:.1f} ms")
    print(f"  p95 ratio (open streams / none): {loaded['p95'] / baseline['p95']:.2f}")


if __name__ == "__main__":
    main()
