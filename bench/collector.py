"""Collector benchmarks (SPEC 6): resident memory, idle CPU and outbox drain rate of a real collector
process, started by the `ExecStart` of deploy/collector/vardkoll-collector.service (what a device runs),
each against a baseline measured in the same run.

    ./dev bench-collector [--idle-s 60] [--events 20000] [--batch 500]
    .venv/bin/python bench/collector.py ...          (the same, once .venv exists)

- memory: VmRSS of the collector after it has connected and settled, and its peak (VmHWM) after the
  drain; baseline: a bare paho-mqtt client process connected to the same broker.
- idle CPU: user + system time from /proc over `--idle-s` seconds, with a `callback_csv` connector on an
  empty folder (polled every second) and default publisher settings (heartbeat every 60 s); baseline:
  the bare paho client over the same seconds.
- drain: events/s from a filled outbox to the server's committed acknowledgements, through a real
  Mosquitto and the server's ingest consumer (SQLite), unthrottled (`max_events_per_s` = 10^6); baseline:
  a bare paho client publishing the same batch payloads (QoS 1, no flow control) into the same ingest.
  Both are timed from the first acknowledgement to the last, so process start is not counted.
- throttle: the same with the default `max_events_per_s` (200): the drain must stay at that rate.

Needs the `mosquitto` binary. Prints the load average before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vardkoll.collector.outbox import Outbox
from vardkoll.demo.broker import start_broker
from vardkoll.protocol.topics import ack_topic, events_topic
from vardkoll.server.ingest.mqtt_consumer import MqttConsumer
from vardkoll.server.services import build_consumer, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.simulation import generate

ROOT = Path(__file__).resolve().parents[1]
SERVICE_FILE = ROOT / "deploy" / "collector" / "vardkoll-collector.service"
UNIT = "SE2321000016-VC01"
DEVICE = "bench-pi-01"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BARE_CLIENT = """
import sys, time, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
client.connect("127.0.0.1", int(sys.argv[1]), keepalive=30)
client.subscribe("vardkoll/v1/x/y/ack", qos=1)
print("connected", flush=True)
client.loop_forever()
"""


# -- /proc ------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# -- processes --------------------------------------------------------------------------------------------


def collector_command(config: Path) -> list[str]:
    """The systemd unit's `ExecStart`, with this venv's bin folder for the installed one and `config` for
    the installed config file: the benchmark measures what a device runs."""
    (exec_start,) = [line.partition("=")[2] for line in SERVICE_FILE.read_text().splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(exec_start)
    argv[0] = str(Path(sys.executable).with_name(Path(argv[0]).name))
    argv[argv.index("--config") + 1] = str(config)
    return argv


def write_config(folder: Path, port: int, publisher: dict[str, object], connector_folder: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f'unit = "{UNIT}"',
        f'device = "{DEVICE}"',
        "[mqtt]",
        f'url = "mqtt://127.0.0.1:{port}"',
        "[outbox]",
        f'path = "{folder / "outbox.db"}"',
        "[pseudonyms]",
        f'secret_file = "{folder / "pseudonym.key"}"',
        "[publisher]",
        *[f"{key} = {value}" for key, value in publisher.items()],
    ]
    if connector_folder is not None:
        lines += ["[[connectors]]", 'type = "callback_csv"', f'folder = "{connector_folder}"']
    path = folder / "collector.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_collector(config: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = config.with_name("collector.log")
    with open(log, "wb") as stream:
        process = subprocess.Popen(collector_command(config), stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return process, log


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the measurements -------------------------------------------------------------------------------------


def measure_idle(port: int, folder: Path, idle_s: float, settle_s: float) -> dict[str, dict[str, float]]:
    """The collector and a bare paho client side by side, sampled over the same seconds."""
    exports = folder / "exports"
    exports.mkdir(parents=True)
    collector, log = start_collector(write_config(folder / "idle", port, {}, exports))
    bare = subprocess.Popen([sys.executable, "-c", BARE_CLIENT, str(port)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert bare.stdout is not None and bare.stdout.readline().strip() == b"connected"
        wait_for(lambda: b"connected to" in log.read_bytes(), 30, "the collector to connect")
        time.sleep(settle_s)
        start = {pid: cpu_seconds(pid) for pid in (collector.pid, bare.pid)}
        started = time.monotonic()
        time.sleep(idle_s)
        wall = time.monotonic() - started
        result = {}
        for name, pid in (("collector", collector.pid), ("bare paho", bare.pid)):
            result[name] = {"cpu_percent": 100 * (cpu_seconds(pid) - start[pid]) / wall, **memory_mb(pid)}
        return result
    finally:
        stop(collector)
        stop(bare)


class AckCounter:
    """Counts committed ids on the device's ack topic; remembers when the first and last arrived."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        self.first_batch = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(ack_topic(UNIT, DEVICE), qos=1)
        self._client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client, userdata, message) -> None:
        committed = len(orjson.loads(message.payload).get("committed") or [])
        now = time.perf_counter()
        if self.first is None:
            self.first, self.first_batch = now, committed
        self.count += committed
        self.last = now

    def rate(self) -> float:
        assert self.first is not None
        return (self.count - self.first_batch) / (self.last - self.first)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def server(port: int, database: Path) -> MqttConsumer:
    """One consumer for every run: a stopped consumer's persistent session would stay in the shared
    subscription and take its turn of the messages."""
    services = build_services(ServerSettings(database_url=f"sqlite:///{database}", mqtt_url=f"mqtt://127.0.0.1:{port}", dev=True), apply_migrations=True)
    consumer = build_consumer(services, client_id="bench-server")
    consumer.start()
    consumer.connected.wait(10)
    return consumer


def renamed(events: list[dict], run: str) -> list[dict]:
    """The same events with ids of their own per run: every run inserts new rows into the one database."""
    return [{**event, "id": f"{run}-{event['id']}"[:64]} for event in events]


def measure_bare_publish(port: int, events: list[dict], batch: int) -> float:
    acks = AckCounter(port)
    try:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", port)
        client.loop_start()
        topic = events_topic(UNIT, DEVICE)
        sent = []
        for start in range(0, len(events), batch):
            payload = b'{"device":"' + DEVICE.encode() + b'","events":[' + b",".join(orjson.dumps(e) for e in events[start : start + batch]) + b"]}"
            sent.append(client.publish(topic, payload, qos=1))
        for info in sent:
            info.wait_for_publish(120)
        wait_for(lambda: acks.count >= len(events), 300, "the server to acknowledge the bare publisher's events")
        client.loop_stop()
        client.disconnect()
        return acks.rate()
    finally:
        acks.close()


def measure_collector_drain(port: int, folder: Path, events: list[dict], publisher: dict[str, object], name: str) -> tuple[float, dict[str, float]]:
    config = write_config(folder / name, port, publisher)
    outbox = Outbox(folder / name / "outbox.db", unit=UNIT, device=DEVICE)
    assert outbox.add(events).added == len(events)
    outbox.close()
    acks = AckCounter(port)
    collector, log = start_collector(config)
    try:
        wait_for(lambda: acks.count >= len(events), 600, f"the collector ({name}) to drain its outbox; see {log}")
        memory = memory_mb(collector.pid)
        return acks.rate(), memory
    finally:
        stop(collector)
        acks.close()


def bench_events(count: int) -> list[dict]:
    events, seen = [], set()
    for event in generate(seed=5, units=1, days=400):
        if event["id"] in seen:
            continue
        seen.add(event["id"])
        events.append({**event, "unit": UNIT, "device": DEVICE})
        if len(events) == count:
            break
    return events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-s", type=float, default=60.0, help="seconds of idle CPU sampling (default 60)")
    parser.add_argument("--settle-s", type=float, default=5.0, help="seconds after connecting before sampling")
    parser.add_argument("--events", type=int, default=20_000, help="events in the outbox for the drain (default 20 000)")
    parser.add_argument("--batch", type=int, default=500, help="events per batch (the collector's default is 500)")
    parser.add_argument("--throttled-events", type=int, default=1500, help="events for the default-throttle drain (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    broker = start_broker()
    if broker.kind != "mosquitto":
        print("this benchmark needs the mosquitto binary", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="vardkoll-bench-collector-"))
    load_before = load()
    try:
        events = bench_events(args.events)
        idle = measure_idle(broker.port, folder, args.idle_s, args.settle_s)
        consumer = server(broker.port, folder / "server.db")
        try:
            print("idle measured; draining", file=sys.stderr)
            baseline = measure_bare_publish(broker.port, renamed(events, "b"), args.batch)
            unthrottled = {"max_events_per_s": 1_000_000, "start_jitter_s": 0, "batch_events": args.batch}
            drain, drain_memory = measure_collector_drain(broker.port, folder, renamed(events, "c"), unthrottled, "drain")
            throttled = None
            if args.throttled_events:
                throttled, _ = measure_collector_drain(broker.port, folder, renamed(events[: args.throttled_events], "t"), {"start_jitter_s": 0}, "throttled")
        finally:
            consumer.stop()
    finally:
        broker.stop()
    load_after = load()
    collector, bare = idle["collector"], idle["bare paho"]
    print(f"load average before {load_before}, after {load_after}; cpus {os.cpu_count()}; python {sys.version.split()[0]}")
    print(
        f"memory, idle:        collector {collector['VmRSS']:.1f} MB RSS (anon {collector['RssAnon']:.1f}, file {collector['RssFile']:.1f});"
        f" bare paho client {bare['VmRSS']:.1f} MB (ratio {collector['VmRSS'] / bare['VmRSS']:.2f}; SPEC: < 40 MB on a Pi-class arm64 device)"
    )
    print(f"memory, after drain: collector {drain_memory['VmRSS']:.1f} MB RSS, peak {drain_memory['VmHWM']:.1f} MB")
    print(f"idle CPU over {args.idle_s:.0f} s:  collector {collector['cpu_percent']:.2f} %, bare paho client {bare['cpu_percent']:.2f} % (SPEC: < 2 %)")
    print(f"drain of {len(events):,} events in batches of {args.batch}, unthrottled, through Mosquitto and the server's ingest (SQLite):")
    print(f"  bare paho publish:  {baseline:,.0f} events/s")
    print(f"  collector:          {drain:,.0f} events/s (ratio {drain / baseline:.2f})")
    if throttled is not None:
        print(f"  collector, default throttle (max_events_per_s 200): {throttled:,.0f} events/s")
    if args.json:
        args.json.write_text(
            orjson.dumps(
                {
                    "load_before": load_before,
                    "load_after": load_after,
                    "idle": idle,
                    "drain_memory": drain_memory,
                    "baseline_events_per_s": baseline,
                    "drain_events_per_s": drain,
                    "throttled_events_per_s": throttled,
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
