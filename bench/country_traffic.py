"""A country's traffic (issue 18): event -> live figure for a region, and the region page times, while
1 200 units publish at the national peak rate and then a burst of 20 times that; results in
docs/benchmarks.md, "Country traffic".

The national peak rate, from what docs/benchmarks.md says a region sends:

    a region            about 100 000 events a day                (docs/benchmarks.md, "Server processes")
    the country         21 regions x 100 000 = 2 100 000 events a day, from about 1 200 primary care units
    the peak hour       assumed to carry 15 % of a day's events: the telephone queues open at 08:00 and the
                        morning's calls, call-backs and bookings crowd into the first hour (an even spread over
                        a 10-hour working day would be 10 %; 15 % is the assumption, `--peak-hour-share`)
    the peak rate       2 100 000 x 0.15 / 3 600 s = 87.5 events/s
    the burst           20 x that = 1 750 events/s (a region or more reconnecting and draining outboxes)

What runs (server_processes.py's machinery: a throwaway PostgreSQL cluster with fsync off, Mosquitto,
`vardkoll server` process(es) as the systemd slots run them):

- 1 200 units registered: the first 230 in "Region 01" (the largest region's size, the region of issue 18's
  page goals), the other 970 over 20 more regions. Region 01 holds `--history-days` generated days before
  today at their real dates and today's data so far; the other units start today empty (they publish, they
  are not read).
- Peak: every unit in turn publishes small batches (`--batch`, default 2: what a collector has at 0.07
  events/s, plus the marker) at the peak rate for `--seconds`; then the burst: batches of `--burst-batch`
  (default 50, an outbox draining) at 20 x the rate for `--burst-seconds`. Each batch ends with a marker call
  offered now (live_latency.py), so a unit's telephone denominator reaches a number known in advance.

Measured in one run:

  baseline  a bare MQTT publish -> subscribe round trip of the same payloads at each phase's pace, same
            broker, before the server gets any load (`--baseline-seconds` of each phase)
  live      publish -> the region's live stream (`GET /api/v1/live?region=Region 01`) shows the batch, for
            Region 01's batches; p50/p99 per phase against the baseline's p99
  pages     Regionvy (`/region/Region 01`, signed in) and `GET /api/v1/compliance?region=` (telephone, the
            running month), one after the other with a trivial endpoint (`/api/v1/health/live`) between,
            a round every `--page-interval` s (an analyst or two refreshing, not a flood), in a server
            process started after one round had kept the day parts (its time is "first"): its first
            round is cold, then quiet (no traffic), the peak and the burst; p50/p95 per phase and the
            ratio to the quiet p95
  machine   the share of all the machine's CPU time that was busy, and stolen by a virtual machine's host, per
            phase (Linux, /proc/stat): a page time under load means little without it

With `--web-slots N` the server side is `--processes` ingest slots and N web slots (no events, no jobs;
docs/operations.md, "Scaling"), and the pages and the live stream are asked of the first web slot; with
`--live-apart` the live stream is asked of the second, so the pages' process has no live updates to make.

    .venv/bin/python bench/country_traffic.py [--units 1200] [--seconds 60] [--burst-seconds 30] [--history-days 4]
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from bench_common import MachineBusy, machine, percentile, summary
from live_latency import STOCKHOLM, Batch, make_batches, make_workload, mqtt_round_trip, prepare_database, run_live, wait_for_ingest
from server_processes import TOKEN, copy_workload, servers, store_history
from vardkoll.demo.broker import start_broker

REGIONS = 21
EVENTS_PER_REGION_DAY = 100_000
LIVE_GOAL_P99_MS = 1000.0
WARM_GOAL_MS = 100.0
COLD_GOAL_MS = 1000.0
WATCHED = "Region 01"


def peak_rate(regions: int, events_per_region_day: int, peak_hour_share: float) -> float:
    """Events per second in the country's busiest hour."""
    return regions * events_per_region_day * peak_hour_share / 3600


def region_layout(units: list[str], watched_units: int, regions: int) -> dict[str, str]:
    """The first `watched_units` units in Region 01, the rest in turn over the other regions."""
    layout = {}
    for index, unit in enumerate(units):
        number = 1 if index < watched_units else 2 + (index - watched_units) % (regions - 1)
        layout[unit] = f"Region {number:02d}"
    return layout


def interleaved(units: list[str], watched: set[str]) -> list[str]:
    """The units in the order they take turns: the watched region's spread evenly among the others, so that
    any stretch of batches (the peak's, the burst's) has its share of the region's."""
    mine = [unit for unit in units if unit in watched]
    others = [unit for unit in units if unit not in watched]
    place = {unit: (n + 0.5) / len(mine) for n, unit in enumerate(mine)} | {unit: (n + 0.5) / len(others) for n, unit in enumerate(others)}
    return sorted(units, key=place.__getitem__)


def schedule(peak_count: int, peak_interval_s: float, burst_count: int, burst_interval_s: float) -> list[float]:
    """When each batch is sent, seconds from the start: the peak's batches, then the burst's."""
    peak = [n * peak_interval_s for n in range(peak_count)]
    burst_start = peak_count * peak_interval_s
    return peak + [burst_start + n * burst_interval_s for n in range(burst_count)]


def ask_pages(base: str, pages: dict[str, str], timings: list[tuple[float, str, float]], stop: threading.Event, interval_s: float) -> None:
    """Regionvy, the region query and a trivial endpoint one after the other, a round every `interval_s`,
    until `stop` (one round when it is already set); (when, name, ms)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, timeout=120) as client:
        response = client.post("/logga-in", data={"token": TOKEN, "nasta": "/"}, headers={"Origin": base})
        if response.status_code != 303:
            raise RuntimeError(f"signing in: {response.status_code} {response.text[:200]}")
        while True:
            round_start = time.perf_counter()
            for name, path in pages.items():
                started = time.perf_counter()
                response = client.get(path, headers=headers if path.startswith("/api") else {})
                timings.append((started, name, (time.perf_counter() - started) * 1000))
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
            if stop.wait(max(0.0, round_start + interval_s - time.perf_counter())):
                return


def phase_of(at: float, bounds: list[tuple[str, float, float]]) -> str | None:
    for name, start, end in bounds:
        if start <= at < end:
            return name
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1200, help="units publishing (default 1 200)")
    parser.add_argument("--region-units", type=int, default=230, help="units in the watched region (default 230)")
    parser.add_argument("--peak-hour-share", type=float, default=0.15, help="share of a day's events in the busiest hour (default 0.15)")
    parser.add_argument("--burst-factor", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="how long the peak rate flows (default 60)")
    parser.add_argument("--burst-seconds", type=float, default=30, help="how long the burst flows (default 30)")
    parser.add_argument("--batch", type=int, default=2, help="events per batch at the peak, the marker included (default 2)")
    parser.add_argument("--burst-batch", type=int, default=50, help="events per batch in the burst, the marker included (default 50)")
    parser.add_argument("--history-days", type=int, default=4, help="generated days before today in the watched region (default 4)")
    parser.add_argument("--quiet-seconds", type=float, default=10, help="page times with no traffic, before it starts (default 10)")
    parser.add_argument("--baseline-seconds", type=float, default=10, help="bare MQTT round trip, per phase (default 10)")
    parser.add_argument("--page-interval", type=float, default=2, help="seconds between rounds of page requests (default 2)")
    parser.add_argument("--processes", type=int, default=1, help="vardkoll server processes (default 1)")
    parser.add_argument(
        "--web-slots",
        type=int,
        default=0,
        help="also this many web slots (no events, no jobs); pages and the live stream are then asked of the first (default 0)",
    )
    parser.add_argument(
        "--web-cpus",
        default="",
        help="CPUs (comma-separated) the web slots run on, everything else (this benchmark, PostgreSQL, Mosquitto, "
        "the ingest slots) on the others: a web slot with a core of its own (default: no pinning)",
    )
    parser.add_argument(
        "--live-apart",
        action="store_true",
        help="ask the live stream of the second web slot, the pages of the first (needs --web-slots 2 or more): pages without live updates in their process",
    )
    parser.add_argument("--settle", type=float, default=30, help="seconds to wait for the last live figures (default 30)")
    args = parser.parse_args()
    if args.region_units > args.units:
        parser.error("--region-units must not exceed --units")
    if args.live_apart and args.web_slots < 2:
        parser.error("--live-apart needs --web-slots 2 or more")
    web_cpus = {int(cpu) for cpu in args.web_cpus.split(",") if cpu.strip()}
    if web_cpus:
        others = os.sched_getaffinity(0) - web_cpus
        if not args.web_slots or not others or not web_cpus <= os.sched_getaffinity(0):
            parser.error("--web-cpus needs --web-slots and must leave at least one of this machine's CPUs to the rest")
        os.sched_setaffinity(0, others)  # inherited by every thread and process started from here on

    from server_processes import start_cluster  # tests/support, which server_processes puts on sys.path

    rate = peak_rate(REGIONS, EVENTS_PER_REGION_DAY, args.peak_hour_share)
    burst_rate = rate * args.burst_factor
    peak_interval_s, burst_interval_s = args.batch / rate, args.burst_batch / burst_rate
    peak_count, burst_count = int(args.seconds / peak_interval_s), int(args.burst_seconds / burst_interval_s)
    print(
        f"national peak: {REGIONS} regions x {EVENTS_PER_REGION_DAY:,} events a day x {args.peak_hour_share:.0%} in the busiest hour / 3 600 s "
        f"= {rate:.1f} events/s; burst {args.burst_factor:g} x = {burst_rate:,.0f} events/s",
        flush=True,
    )
    print(
        f"{args.units} units ({args.region_units} in {WATCHED}); peak {peak_count} batches of {args.batch} over {args.seconds:g} s, "
        f"burst {burst_count} batches of {args.burst_batch} over {args.burst_seconds:g} s; PostgreSQL, {args.processes} server process(es)"
        + (f" and {args.web_slots} web slot(s), pages and live stream asked of a web slot" if args.web_slots else "")
        + (", the live stream of another web slot than the pages" if args.live_apart else "")
        + (f"; web slots on CPU {args.web_cpus}, the rest on the others" if args.web_cpus else ""),
        flush=True,
    )
    print(f"before: {machine()}", flush=True)
    started = time.perf_counter()
    today = datetime.now(STOCKHOLM).date()
    sizes = [args.batch] * peak_count + [args.burst_batch] * burst_count
    per_unit = math.ceil(len(sizes) / args.units) * (max(sizes) - 1) + max(sizes)
    full = make_workload(seed=1, units=args.units, per_unit=per_unit, today=today)
    layout = region_layout(full.units, args.region_units, REGIONS)
    watched = {unit for unit, region in layout.items() if region == WATCHED}
    full.preload = [event for event in full.preload if event["unit"] in watched]  # the other units start today empty
    batches, initial = make_batches(replace(copy_workload(full), units=interleaved(full.units, watched)), len(sizes), sizes)
    if len(batches) < len(sizes):
        raise RuntimeError(f"only {len(batches)} batches of simulated events (wanted {len(sizes)})")
    offsets = schedule(peak_count, peak_interval_s, burst_count, burst_interval_s)

    cluster = start_cluster()
    try:
        url = cluster.url(cluster.create_database("bench_country_"))
        prepare_database(url, full, REGIONS, region_by_unit=layout)
        history_start = today - timedelta(days=args.history_days)
        history = store_history(url, args.region_units, history_start, today) if args.history_days else 0
        print(
            f"  {WATCHED}: {history:,} events of {history_start} .. {today - timedelta(days=1)} and {len(full.preload):,} of today; "
            f"prepared in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        broker = start_broker()
        try:
            rtt = {
                "peak": mqtt_round_trip(broker.port, batches[: min(peak_count, int(args.baseline_seconds / peak_interval_s))], peak_interval_s),
                "burst": mqtt_round_trip(
                    broker.port, batches[peak_count : peak_count + min(burst_count, int(args.baseline_seconds / burst_interval_s))], burst_interval_s
                ),
            }
            month = f"from={today.replace(day=1)}&to={today}"
            pages = {
                "Regionvy": f"/region/{quote(WATCHED)}?till={today}",
                "API region": f"/api/v1/compliance?region={quote(WATCHED)}&metric=telephone&{month}",
                "trivial": "/api/v1/health/live",
            }
            first_pages: list[tuple[float, str, float]] = []
            with servers(args.processes, broker.port, url) as ports:  # day parts computed and kept, as after the first day
                once = threading.Event()
                once.set()
                ask_pages(f"http://127.0.0.1:{ports[0]}", pages, first_pages, once, 0)
            print("  first pages (day parts not kept yet): " + ", ".join(f"{name} {ms:.0f} ms" for _, name, ms in first_pages), flush=True)
            with servers(args.processes, broker.port, url, args.web_slots, web_cpus) as ports:  # a fresh process: cold
                wait_for_ingest(broker.port, full)
                base = f"http://127.0.0.1:{ports[args.processes] if args.web_slots else ports[0]}"
                timings: list[tuple[float, str, float]] = []
                stop = threading.Event()
                with MachineBusy() as busy:
                    quiet_start = time.perf_counter()
                    asker = threading.Thread(target=ask_pages, args=(base, pages, timings, stop, args.page_interval), daemon=True)
                    asker.start()
                    time.sleep(args.quiet_seconds)
                    live_base = f"http://127.0.0.1:{ports[args.processes + 1]}" if args.live_apart else base
                    result = run_live(
                        broker.port, live_base, TOKEN, full, batches, initial, [WATCHED], watched, burst_interval_s, args.settle, offsets_s=offsets
                    )
                    stop.set()
                    asker.join(120)
        finally:
            broker.stop()
    finally:
        cluster.stop()

    peak_start, burst_start = batches[0].published, batches[peak_count].published
    burst_end = batches[-1].published + burst_interval_s
    bounds = [("quiet", quiet_start, peak_start), ("peak", peak_start, burst_start), ("burst", burst_start, burst_end)]
    report(args, rate, burst_rate, batches, peak_count, result, rtt, timings, bounds, busy)
    print(f"after: {machine()}")
    return 0


def report(
    args: argparse.Namespace,
    rate: float,
    burst_rate: float,
    batches: list[Batch],
    peak_count: int,
    result: dict[str, Any],
    rtt: dict[str, list[float]],
    timings: list[tuple[float, str, float]],
    bounds: list[tuple[str, float, float]],
    busy: MachineBusy,
) -> None:
    sent = {
        "peak": (sum(b.events for b in batches[:peak_count]), batches[peak_count].published - batches[0].published),
        "burst": (sum(b.events for b in batches[peak_count:]), batches[-1].published - batches[peak_count].published),
    }
    live: dict[str, list[float]] = {"peak": [], "burst": []}
    for number, ms in zip(result["live_numbers"], result["live"]):
        live["peak" if number < peak_count else "burst"].append(ms)
    not_seen = result["not_seen"]
    print(
        f"published {result['events']:,} events in {result['batches']:,} batches; {result['late_sends']} sends more than a burst interval late; "
        f"not acknowledged {result['not_acked']}, never shown live within {args.settle:g} s: {not_seen}"
    )
    print("event -> live figure, Region 01's stream (ms):")
    print(f"  {'phase':<7}{'events/s':>10}{'n':>6}{'p50':>9}{'p99':>9}{'max':>9}{'MQTT p99':>10}{'p99/MQTT':>10}")
    for phase, (events, seconds) in sent.items():
        s, base = summary(live[phase]), percentile(rtt[phase], 0.99)
        speed = events / seconds if seconds > 0 else float("nan")
        print(f"  {phase:<7}{speed:>10,.0f}{s['n']:>6}{s['p50']:>9.0f}{s['p99']:>9.0f}{s['max']:>9.0f}{base:>10.1f}{s['p99'] / base:>10.0f}")
    worst = max((percentile(live[p], 0.99) for p in live if live[p]), default=float("inf"))
    met = worst < LIVE_GOAL_P99_MS and not not_seen
    print(f"  goal p99 < {LIVE_GOAL_P99_MS:.0f} ms in both phases: {'met' if met else 'NOT met'} (worst {worst:.0f} ms, {not_seen} never shown)")

    by_phase: dict[tuple[str, str], list[float]] = {}
    cold: dict[str, float] = {}
    for at, name, ms in timings:
        during = phase_of(at, bounds)
        if during == "quiet" and name not in cold:
            cold[name] = ms  # the first request of a fresh server process
            continue
        if during is not None:
            by_phase.setdefault((during, name), []).append(ms)
    print(f"pages ({args.region_units} units; ms; cold = the first request of the fresh server): " + ", ".join(f"{n} cold {ms:.0f}" for n, ms in cold.items()))
    print(f"  {'phase':<7}{'page':<12}{'n':>5}{'p50':>9}{'p95':>9}{'max':>9}{'p95/quiet':>11}")
    for phase in ("quiet", "peak", "burst"):
        for name in ("Regionvy", "API region", "trivial"):
            values = by_phase.get((phase, name), [])
            s = summary(values)
            quiet = percentile(by_phase.get(("quiet", name), []), 0.95)
            print(f"  {phase:<7}{name:<12}{s['n']:>5}{s['p50']:>9.0f}{s['p95']:>9.0f}{s['max']:>9.0f}{s['p95'] / quiet:>11.2f}")
    for name in ("Regionvy", "API region"):
        loaded = max(percentile(by_phase.get((p, name), []), 0.95) for p in ("peak", "burst"))
        verdict = "met" if loaded < WARM_GOAL_MS and cold.get(name, math.inf) < COLD_GOAL_MS else "NOT met"
        print(
            f"  {name}: cold {cold.get(name, math.nan):.0f} ms (goal < {COLD_GOAL_MS:.0f}), p95 under traffic {loaded:.0f} ms (warm goal < {WARM_GOAL_MS:.0f}): {verdict}"
        )
    print(f"rates: peak {rate:.1f} events/s, burst {burst_rate:,.0f} events/s")
    shares = {phase: busy.between(start, end) for phase, start, end in bounds}
    known = {phase: share for phase, share in shares.items() if share is not None}
    if len(known) == len(shares):  # Linux; the share of all the CPUs' time busy and stolen by the host
        print(
            f"machine ({os.cpu_count()} CPUs) busy / stolen: "
            + ", ".join(f"{phase} {busy_share:.0%} / {stolen:.0%}" for phase, (busy_share, stolen) in known.items())
        )


if __name__ == "__main__":
    raise SystemExit(main())
