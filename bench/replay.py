"""Benchmark `replay` against SPEC 6: at least 300 000 events/s from a file on 2 cores.

    ./dev bench                      # 1 000 000 events, each measurement once
    ./dev bench --repeat 3           # best of three
    ./dev bench --events 2000000 --profile

Measures, in one run and on the same file of realistic events (made by vardkoll.simulation and cached
under bench/data/, which git ignores):

  baseline   read the file and orjson.loads every line, nothing else: the floor any replay pays
  validate   vardkoll.protocol.parse_event_line on every line (decoding, validation, the personal-number
             guard), to show how replay's time splits between the protocol and the metric engine
  replay     vardkoll.server.replay.replay_path in this process: validation, the personal-number guard,
             de-duplication, the metric engine and the figures
  cli        `vardkoll replay FILE > /dev/null` as a subprocess: the above plus interpreter start,
             imports and writing the JSON document

and prints events/s for each, replay against baseline, whether the goal is met, and the peak resident
memory. Events/s counts lines in the file, repeated lines included.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import orjson

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

from vardkoll.simulation import DEFAULT_START, GENERATOR_VERSION  # noqa: E402

GOAL_EVENTS_PER_S = 300_000


def data_file(data_dir: Path, events: int, seed: int, units: int) -> Path:
    return data_dir / f"events-{events}-s{seed}-u{units}-g{GENERATOR_VERSION}.jsonl"


def ensure_events(path: Path, events: int, seed: int, units: int, regenerate: bool) -> dict[str, Any]:
    """Reuse the cached file when its metadata matches; otherwise generate it in a child process, so
    the generator's memory does not count towards this process's peak."""
    meta_path = path.with_name(path.name + ".meta.json")
    if not regenerate and path.is_file() and meta_path.is_file():
        meta = orjson.loads(meta_path.read_bytes())
        if meta.get("lines") == events and meta.get("bytes_uncompressed") == path.stat().st_size:
            print(f"using cached {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
            return meta
    print(f"generating {events:,} events for {units} clinics (seed {seed}) into {path} ...")
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vardkoll.simulation",
            "--events",
            str(events),
            "--out",
            str(path),
            "--seed",
            str(seed),
            "--units",
            str(units),
            "--start",
            DEFAULT_START.isoformat(),
        ],
        check=True,
    )
    print(f"generated in {time.perf_counter() - started:.1f} s")
    return orjson.loads(meta_path.read_bytes())


class TreeSampler:
    """Samples a process and all its descendants every `interval_s`: the peak of their summed resident
    memory, and the CPU time they spent while sampled. Replay may parse in worker processes, which
    getrusage does not see (with the forkserver start method they are not even our children).
    Linux only; elsewhere both stay 0. A worker's last few milliseconds before it exits may be missed."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_kib = 0
        self._start_ticks: dict[int, int] = {}
        self._last_ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        self._tick_s = 1 / os.sysconf("SC_CLK_TCK")
        self._available = Path("/proc/self/statm").exists()
        if self._available:
            self._start_ticks = {pid: ticks for pid, (ticks, _) in self._sample().items()}

    @property
    def cpu_s(self) -> float:
        return sum(ticks - self._start_ticks.get(pid, 0) for pid, ticks in self._last_ticks.items()) * self._tick_s

    def __enter__(self) -> "TreeSampler":
        if self._available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._available:
            self._thread.join()

    def _tree(self, pid: int) -> list[int]:
        pids = [pid]
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                children = task.read_text().split()
            except OSError:
                continue
            for child in children:
                pids.extend(self._tree(int(child)))
        return pids

    def _sample(self) -> dict[int, tuple[int, int]]:
        """pid -> (utime + stime in clock ticks, resident KiB)"""
        found = {}
        for pid in self._tree(self.pid):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
                ticks = int(fields[11]) + int(fields[12])  # utime, stime
                rss_kib = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page_kib
            except (OSError, IndexError, ValueError):
                continue
            found[pid] = (ticks, rss_kib)
        return found

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            sample = self._sample()
            self.peak_kib = max(self.peak_kib, sum(rss for _, rss in sample.values()))
            for pid, (ticks, _) in sample.items():
                self._last_ticks[pid] = max(ticks, self._last_ticks.get(pid, 0))
            if stopping:  # the sample just taken was the last, after the measured run ended
                return
            self._stop.wait(self.interval_s)


class Timing:
    """The best wall time of N runs, the CPU time of that run (user + system, the whole process tree),
    and the peak resident memory of the process tree over all runs."""

    def __init__(self) -> None:
        self.seconds = float("inf")
        self.cpu_s = 0.0
        self.peak_tree_kib = 0


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[Timing, Any]:
    timing = Timing()
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        with TreeSampler(os.getpid()) as tree:
            cpu_before = _cpu_s()
            started = time.perf_counter()
            result = run()
            elapsed = time.perf_counter() - started
            cpu = _cpu_s() - cpu_before
        cpu = max(cpu, tree.cpu_s)
        timing.peak_tree_kib = max(timing.peak_tree_kib, tree.peak_kib)
        if elapsed < timing.seconds:
            timing.seconds, timing.cpu_s = elapsed, cpu
    return timing, result


def baseline(path: Path) -> int:
    loads = orjson.loads
    count = 0
    with open(path, "rb") as lines:
        for line in lines:
            loads(line)
            count += 1
    return count


def validate_only(path: Path) -> int:
    """parse_event_line on every line: what validation and the personal-number guard cost alone."""
    from vardkoll.protocol import EventRejected, parse_event_line

    count = 0
    with open(path, "rb") as lines:
        for line in lines:
            try:
                parse_event_line(line)
            except EventRejected:
                pass
            count += 1
    return count


def find_cli() -> list[str] | None:
    local = REPO / ".venv" / "bin" / "vardkoll"
    if local.is_file():
        return [str(local)]
    found = shutil.which("vardkoll")
    return [found] if found else None


def run_cli(command: list[str], path: Path, repeat: int) -> Timing:
    """`vardkoll replay FILE > /dev/null`, best of `repeat`: wall time, CPU time of the command and its
    workers, peak RSS of its process tree (sampled) or, where sampling is not possible, of its largest
    process."""
    timing = Timing()
    for _ in range(repeat):
        started = time.perf_counter()
        with tempfile.TemporaryFile() as errors:
            child = subprocess.Popen([*command, "replay", str(path)], stdout=subprocess.DEVNULL, stderr=errors)
            with TreeSampler(child.pid) as tree:
                _, status, usage = os.wait4(child.pid, 0)
            elapsed = time.perf_counter() - started
            code = os.waitstatus_to_exitcode(status)
            child.returncode = code
            if code != 0:
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip()[-2000:]
                raise RuntimeError(f"vardkoll replay exited with {code}: {message}")
        timing.peak_tree_kib = max(timing.peak_tree_kib, tree.peak_kib or usage.ru_maxrss)
        if elapsed < timing.seconds:
            timing.seconds, timing.cpu_s = elapsed, max(usage.ru_utime + usage.ru_stime, tree.cpu_s)
    return timing


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark vardkoll replay (SPEC 6: >= 300 000 events/s on 2 cores).")
    parser.add_argument("--events", type=int, default=1_000_000, help="lines in the event file (default 1 000 000)")
    parser.add_argument("--units", type=int, default=40, help="clinics in the generated file (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="best of N for each measurement (default 1)")
    parser.add_argument("--data-dir", type=Path, default=BENCH_DIR / "data", help="where generated files are cached")
    parser.add_argument("--regenerate", action="store_true", help="make the event file again even if cached")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI measurement")
    parser.add_argument("--no-validate", action="store_true", help="skip the validation-only measurement")
    parser.add_argument("--profile", action="store_true", help="afterwards, profile one in-process replay and show the top functions")
    parser.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    parser.add_argument("--check", action="store_true", help="exit 1 when the in-process replay misses the goal")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # stdout is a TextIOWrapper when run as a script
    if args.events < 1 or args.repeat < 1:
        parser.error("--events and --repeat must be at least 1")

    path = data_file(args.data_dir, args.events, args.seed, args.units)
    meta = ensure_events(path, args.events, args.seed, args.units, args.regenerate)
    lines = meta["lines"]
    size_mb = path.stat().st_size / 1e6
    print(f"{lines:,} lines ({meta['repeated_lines']:,} repeated), {size_mb:.0f} MB, {args.units} clinics; best of {args.repeat}\n")

    load_1min = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load_1min > 0.5:
        print(f"  note: the machine is busy (load average {load_1min:.1f} over the last minute); the figures below are pessimistic\n")
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(), "load_1min_before": round(load_1min, 2)},
        "file": {"path": str(path), "lines": lines, "repeated_lines": meta["repeated_lines"], "bytes": path.stat().st_size},
        "repeat": args.repeat,
    }

    def show(name: str, what: str, timing: Timing) -> dict[str, Any]:
        rate = lines / timing.seconds
        ratio = rate / report["baseline"]["events_per_s"] if "baseline" in report else 1.0
        print(
            f"  {name:<9} {what:<30} {timing.seconds:7.2f} s  {rate:>10,.0f} events/s  {ratio:6.3f}  "
            f"{timing.cpu_s:7.2f} s  {timing.peak_tree_kib / 1024:6.0f} MB"
        )
        entry = {
            "seconds": round(timing.seconds, 3),
            "events_per_s": round(rate),
            "ratio_to_baseline": round(ratio, 4),
            "cpu_seconds": round(timing.cpu_s, 2),
            "peak_rss_mb": round(timing.peak_tree_kib / 1024),
        }
        report[name] = entry
        return entry

    print(f"  {'':<9} {'':<30} {'wall':>9}  {'throughput':>19}  {'×base':>6}  {'CPU':>9}  {'peak RSS':>8}")
    timing, count = best_of(args.repeat, lambda: baseline(path))
    assert count == lines, f"read {count} lines, expected {lines}"
    show("baseline", "read + orjson.loads", timing)

    try:
        from vardkoll.server.replay import replay_path
    except ImportError as exc:
        print(f"  replay    not measured: vardkoll.server.replay.replay_path is not importable ({exc})")
        replay_path = None

    sanity: list[str] = []
    if replay_path is not None and not args.no_validate:
        timing, _ = best_of(args.repeat, lambda: validate_only(path))
        show("validate", "parse_event_line only", timing)
    if replay_path is not None:
        timing, document = best_of(args.repeat, lambda: replay_path(path))
        entry = show("replay", "replay_path (in-process)", timing)
        entry["peak_rss_self_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        entry.update(results=len(document["results"]), rejected=len(document["rejected"]), duplicates=document["duplicates"])
        if document["rejected"]:
            sanity.append(f"{len(document['rejected'])} lines rejected (first: {document['rejected'][0]})")
        if document["duplicates"] != meta["repeated_lines"]:
            sanity.append(f"{document['duplicates']} duplicates counted, {meta['repeated_lines']} repeated lines written")
        if len(document["results"]) != 4 * args.units:
            sanity.append(f"{len(document['results'])} figures, expected {4 * args.units}")
        del document
        gc.collect()

    if not args.no_cli and replay_path is not None:
        command = find_cli()
        if command is None:
            print("  cli       not measured: no vardkoll command in .venv/bin or on PATH")
        else:
            show("cli", "vardkoll replay > /dev/null", run_cli(command, path, args.repeat))

    print(
        "\n  (×base: throughput against the baseline; CPU: user + system of the best run, workers included;"
        "\n   peak RSS: the whole process tree, sampled every 50 ms)\n"
    )
    met = False
    if "replay" in report:
        for name in ("replay", "cli"):
            if name in report:
                rate = report[name]["events_per_s"]
                report[name]["goal_met"] = rate >= GOAL_EVENTS_PER_S
                verdict = "met" if rate >= GOAL_EVENTS_PER_S else f"NOT met ({rate / GOAL_EVENTS_PER_S:.0%} of it)"
                print(f"  goal ≥ {GOAL_EVENTS_PER_S:,} events/s, {name}: {verdict}")
        met = report["replay"]["goal_met"]
        for problem in sanity:
            print(f"  warning: {problem}")
        report["warnings"] = sanity
    else:
        print(f"  goal ≥ {GOAL_EVENTS_PER_S:,} events/s: pending (no replay to measure)")

    if args.profile and replay_path is not None:
        print("\nprofile of one in-process replay (top 20 by own time; profiling slows it down):")
        profiler = cProfile.Profile()
        profiler.runcall(replay_path, path)
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats("tottime").print_stats(20)

    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {args.json}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
