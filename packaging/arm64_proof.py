"""Proof on arm64: the offline bundle installed and run in a Debian bookworm arm64 root under qemu-user.

    sudo ./dev arm64-proof [--calls 1000] [--idle-s 30] [--json FILE]

As root on an x86_64 Debian host with `debootstrap` and `qemu-user-static` (apt), Mosquitto and openssl:
1. registers qemu-aarch64 with binfmt_misc (mounting it if needed: there may be no systemd to do it);
2. makes (once, cached in $VARDKOLL_ARM64_ROOT, default /var/tmp/vardkoll-arm64/bookworm) a bookworm arm64
   minbase root with python3 (`debootstrap --arch=arm64 --variant=minbase --include=python3`), and copies it;
3. builds the aarch64 bundle unless dist/ has it (`./dev package`), and runs its install.sh in the copy
   with no network at all (`unshare --net`): venv, service user, /etc/vardkoll-collector, units;
4. starts a Mosquitto on the host with a TLS listener for the device and a plain one for the server's
   ingest consumer (SQLite), and runs, inside the root as the service user, `vardkoll collector doctor`
   and `vardkoll collector run` against it over TLS;
5. measures the emulated collector: resident memory (VmRSS, VmHWM of the qemu process, which holds the
   guest's memory and qemu's translation cache) beside a baseline (the same venv's Python under the same
   emulator importing ssl, paho, orjson and pydantic, nothing of ours), idle CPU, log bytes, and CPU per
   event while a callback export of `--calls` calls is read, pseudonymised, stored and sent until the
   server has acknowledged every event.

Numbers under qemu-user are emulated: CPU per event is many times a real Pi's, memory somewhat higher.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("VARDKOLL_ARM64_ROOT", "/var/tmp/vardkoll-arm64/bookworm"))
UNIT = "SE2321000016-VC01"
DEVICE = "pi-arm64-proof"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEADER = "call_id;call_time;callback_booked;callback_slot;callback_made;outcome;queue_status"


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, encoding="utf-8", errors="replace", **kwargs)


def _utf8_env() -> dict[str, str]:
    """The root has no locales: C.UTF-8 is built into glibc, so Python and the reports speak UTF-8."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "HOME": "/var/lib/vardkoll-collector"}


def need(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"arm64-proof: {message}")


# -- the emulated machine ---------------------------------------------------------------------------------


def register_qemu() -> None:
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if (binfmt / "qemu-aarch64").exists():
        return
    rule = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
    need(rule.exists(), "qemu-user-static is not installed (apt-get install qemu-user-static debootstrap)")
    if not (binfmt / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)])
    (binfmt / "register").write_text(rule.read_text().strip() + "\n")


def bookworm_root() -> Path:
    if (CACHE / "usr" / "bin" / "python3").exists():
        return CACHE
    need(shutil.which("debootstrap") is not None, "debootstrap is not installed (apt-get install debootstrap qemu-user-static)")
    step(f"debootstrap bookworm arm64 minbase into {CACHE} (once; a few minutes)")
    partial = CACHE.with_name(CACHE.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3", "bookworm", str(partial)], stdout=subprocess.DEVNULL)
    partial.rename(CACHE)
    return CACHE


def aarch64_bundle() -> Path:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    bundle = ROOT / "dist" / f"vardkoll-collector-{version}-aarch64.tar.gz"
    if not bundle.exists():
        step("building the aarch64 bundle (./dev package)")
        run([sys.executable, str(ROOT / "packaging" / "build.py"), "--arch", "aarch64"])
    return bundle


class Chroot:
    """A copy of the cached root with /proc and /dev mounted; `close()` unmounts and removes it."""

    def __init__(self, cache: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="vardkoll-arm64-", dir="/var/tmp"))
        run(["cp", "-a", f"{cache}/.", str(self.path)])
        self.mounts = [self.path / "proc", self.path / "dev"]
        run(["mount", "-t", "proc", "proc", str(self.mounts[0])])
        run(["mount", "--bind", "/dev", str(self.mounts[1])])

    def ids(self, user: str) -> str:
        for line in (self.path / "etc" / "passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return f"{fields[2]}:{fields[3]}"
        raise SystemExit(f"arm64-proof: no user {user} in the root")

    def command(self, *args: str, user: str | None = None, network: bool = True) -> list[str]:
        prefix = [] if network else ["unshare", "--net"]
        userspec = [f"--userspec={self.ids(user)}"] if user else []
        return [*prefix, "chroot", *userspec, str(self.path), *args]

    def close(self, keep: bool) -> None:
        for mount in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mount)], check=False)
        if not keep:
            shutil.rmtree(self.path, ignore_errors=True)


# -- the host side: broker and server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tls_files(folder: Path) -> None:
    def openssl(*args: str) -> None:
        run(["openssl", *args], cwd=folder, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vardkoll arm64 proof ca", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem"
    )


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    tls_port, plain_port = free_port(), free_port()
    (folder / "mosquitto.conf").write_text(
        "\n".join(
            [
                "per_listener_settings false",
                "allow_anonymous true",
                "user root",
                "max_queued_messages 0",
                f"listener {tls_port} 127.0.0.1",
                f"cafile {folder / 'ca.pem'}",
                f"certfile {folder / 'broker.pem'}",
                f"keyfile {folder / 'broker.key'}",
                f"listener {plain_port} 127.0.0.1",
            ]
        )
        + "\n"
    )
    broker = subprocess.Popen(["mosquitto", "-c", str(folder / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=open(folder / "mosquitto.log", "wb"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", plain_port)) == 0:
                return broker, tls_port, plain_port
        time.sleep(0.1)
    raise SystemExit(f"arm64-proof: mosquitto did not start; see {folder / 'mosquitto.log'}")


def start_server(plain_port: int, folder: Path) -> Any:
    from vardkoll.server.ingest.mqtt_consumer import MqttConsumer
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings

    services = build_services(
        ServerSettings(database_url=f"sqlite:///{folder / 'server.db'}", mqtt_url=f"mqtt://127.0.0.1:{plain_port}", dev=True), apply_migrations=True
    )
    consumer = MqttConsumer(services, client_id="arm64-proof-server")
    consumer.start()
    need(consumer.connected.wait(15), "the server's ingest consumer did not connect")
    return consumer


# -- the device side --------------------------------------------------------------------------------------


def write_device_config(chroot: Chroot, tls_port: int, ca: Path) -> None:
    etc = chroot.path / "etc" / "vardkoll-collector"
    shutil.copy(ca, etc / "ca.pem")
    (etc / "collector.toml").write_text(f"""unit = "{UNIT}"
device = "{DEVICE}"
poll_interval_s = 1.0

[mqtt]
url = "mqtts://127.0.0.1:{tls_port}"
ca_file = "/etc/vardkoll-collector/ca.pem"

[publisher]
start_jitter_s = 0
max_events_per_s = 1000

[[connectors]]
type = "callback_csv"
folder = "/srv/callback-exports"
settle_s = 0
[connectors.columns]
callback_slot = "callback_slot"
queue_status = "queue_status"
""")
    group = int(chroot.ids("vardkoll-collector").split(":")[1])
    for path in (etc / "ca.pem", etc / "collector.toml"):
        os.chown(path, 0, group)
        path.chmod(0o640)
    exports = chroot.path / "srv" / "callback-exports"
    exports.mkdir(parents=True, exist_ok=True)
    exports.chmod(0o755)


def callback_export(calls: int) -> str:
    """`calls` calls booked for a callback and called back (3 events each): no names, no numbers."""
    rows = [HEADER]
    for index in range(calls):
        minute, second = divmod(index, 60)
        rows.append(
            f"PROOF-{index:06d};2026-12-03 08:{minute % 60:02d}:{second:02d};2026-12-03 08:{minute % 60:02d}:{second:02d};"
            f"2026-12-03 10:00;2026-12-03 10:{minute % 60:02d}:{second:02d};nådd;"
        )
    return "\n".join(rows) + "\n"


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


def outbox_counters(chroot: Chroot) -> dict[str, int]:
    path = chroot.path / "var" / "lib" / "vardkoll-collector" / "outbox.db"
    if not path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return dict(db.execute("SELECT name, value FROM counters").fetchall())
        finally:
            db.close()
    except sqlite3.Error:
        return {}


BASELINE = "import ssl, time, paho.mqtt.client, orjson, pydantic; print('ready', flush=True); time.sleep(60)"


def emulated_baseline(chroot: Chroot) -> dict[str, float]:
    """The same venv's Python under the same emulator, importing what a bare MQTT client over TLS needs
    and nothing of ours: most of the emulated RSS is qemu's and the interpreter's, not the collector's."""
    process = subprocess.Popen(
        chroot.command("/opt/vardkoll-collector/current/bin/python", "-c", BASELINE, user="vardkoll-collector"), stdout=subprocess.PIPE, env=_utf8_env()
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        time.sleep(3)
        return proc_memory_mb(process.pid)
    finally:
        process.kill()
        process.wait()


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        need(time.monotonic() < deadline, f"timed out waiting for {what}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev arm64-proof", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="calls in the callback export (3 events each; default 1000)")
    parser.add_argument("--idle-s", type=float, default=30.0, help="seconds of idle CPU sampling (default 30)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the root copy (its path is printed)")
    args = parser.parse_args(argv)
    need(os.geteuid() == 0, "run as root (binfmt_misc, debootstrap, chroot)")
    need(shutil.which("mosquitto") is not None and shutil.which("openssl") is not None, "needs mosquitto and openssl")
    started = time.monotonic()
    results: dict[str, object] = {"emulated": "qemu-user aarch64 on " + os.uname().machine, "load_before": os.getloadavg()}
    register_qemu()
    cache = bookworm_root()
    bundle = aarch64_bundle()
    step(f"copying the root; bundle {bundle.name}")
    chroot = Chroot(cache)
    host = Path(tempfile.mkdtemp(prefix="vardkoll-arm64-host-"))
    broker = consumer = collector = None
    try:
        machine = run(
            chroot.command("python3", "-c", "import platform, sys; print(platform.machine(), sys.version.split()[0])"), capture_output=True
        ).stdout.split()
        results["machine"], results["python"] = machine
        step(f"inside: {' '.join(machine)}; installing offline (no network namespace)")
        with tarfile.open(bundle) as tar:
            tar.extractall(chroot.path / "tmp", filter="tar")
        top = "/tmp/" + bundle.name.removesuffix(".tar.gz")
        clock = time.monotonic()
        install = run(chroot.command("sh", f"{top}/install.sh", network=False), capture_output=True, env=_utf8_env())
        results["install_s"] = round(time.monotonic() - clock, 1)
        print(install.stdout, file=sys.stderr)

        tls_files(host)
        broker, tls_port, plain_port = start_broker(host)
        consumer = start_server(plain_port, host)
        write_device_config(chroot, tls_port, host / "ca.pem")

        step("vardkoll collector doctor (as vardkoll-collector)")
        clock = time.monotonic()
        doctor = subprocess.run(
            chroot.command("/usr/local/bin/vardkoll", "collector", "doctor", "--timeout-s", "30", user="vardkoll-collector"),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=_utf8_env(),
        )
        results["doctor_s"] = round(time.monotonic() - clock, 1)
        print(doctor.stdout + doctor.stderr, file=sys.stderr)
        broker_ok = f"OK      Broker: ansluten till 127.0.0.1:{tls_port} med TLS"
        need(broker_ok in doctor.stdout, "doctor did not reach the broker over TLS (see above)")
        results["doctor"] = [line for line in doctor.stdout.splitlines() if line[:3] in ("OK ", "VAR", "FEL")]

        step("vardkoll collector run (as vardkoll-collector)")
        log_path = host / "collector.log"
        with open(log_path, "wb") as log:
            collector = subprocess.Popen(
                chroot.command("/usr/local/bin/vardkoll", "collector", "run", "--config", "/etc/vardkoll-collector/collector.toml", user="vardkoll-collector"),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_utf8_env(),
            )
        clock = time.monotonic()
        wait_for(lambda: b"connected to" in log_path.read_bytes(), 180, f"the collector to connect ({log_path})")
        results["start_to_connected_s"] = round(time.monotonic() - clock, 1)
        time.sleep(5)
        cpu0, clock = proc_cpu_s(collector.pid), time.monotonic()
        time.sleep(args.idle_s)
        results["idle_cpu_percent"] = round(100 * (proc_cpu_s(collector.pid) - cpu0) / (time.monotonic() - clock), 2)
        results["idle_memory_mb"] = proc_memory_mb(collector.pid)

        log_bytes_idle = results["log_bytes_idle"] = log_path.stat().st_size
        results["baseline_idle_memory_mb"] = emulated_baseline(chroot)

        step(f"a callback export of {args.calls} calls")
        exports = chroot.path / "srv" / "callback-exports"
        (exports / "export.tmp").write_text(callback_export(args.calls), encoding="utf-8")
        cpu0, clock = proc_cpu_s(collector.pid), time.monotonic()
        os.replace(exports / "export.tmp", exports / "export-2026-12-03.csv")
        expected = 3 * args.calls
        wait_for(lambda: outbox_counters(chroot).get("committed", 0) >= expected, 1800, f"{expected} events to be acknowledged ({log_path})")
        wall = time.monotonic() - clock
        cpu = proc_cpu_s(collector.pid) - cpu0
        counters = outbox_counters(chroot)
        results["log_bytes_per_event"] = round((log_path.stat().st_size - log_bytes_idle) / expected, 2)
        results.update(
            events=expected,
            counters={k: counters.get(k) for k in ("added", "committed", "rejected", "dropped", "refused")},
            events_wall_s=round(wall, 1),
            cpu_ms_per_event=round(1000 * cpu / expected, 3),
            events_per_cpu_s=round(expected / cpu) if cpu else None,
            memory_after_events_mb=proc_memory_mb(collector.pid),
        )
        collector.send_signal(signal.SIGTERM)
        results["exit_code"] = collector.wait(60)
        need(results["exit_code"] == 0, f"the collector exited with {results['exit_code']} ({log_path})")
    finally:
        if collector is not None and collector.poll() is None:
            collector.kill()
        if consumer is not None:
            consumer.stop()
        if broker is not None:
            broker.terminate()
            broker.wait(10)
        chroot.close(args.keep)
        if args.keep:
            print(f"root kept at {chroot.path}", file=sys.stderr)
    results["total_s"] = round(time.monotonic() - started, 1)
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
