"""The files in deploy/, run as a region runs them, in temporary folders on loopback ports.

Nothing here repeats what the files say: commands and settings are read from the systemd units and the
environment file, the broker's and nginx's configs are the deploy/ files with only their paths, ports and
host-specific lines substituted (each substitution must find its line, so a changed file fails loudly).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support import free_port, port_accepts, running_as_root, tail, wait_until
from support.mosquitto import Broker, find_binary, find_dynsec_plugin

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED_EXE = "/opt/vardkoll/venv/bin/vardkoll"


def vardkoll_exe() -> str:
    import sys

    return shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))


# -- systemd units -------------------------------------------------------------------------------------


@dataclass
class UnitFile:
    """The [Service] settings of a unit file that say what runs and with which environment."""

    path: Path
    service: dict[str, list[str]] = field(default_factory=dict)
    unit: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "UnitFile":
        parsed = cls(path)
        section: dict[str, list[str]] | None = None
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = {"[Service]": parsed.service, "[Unit]": parsed.unit}.get(line)
                continue
            if section is not None:
                key, _, value = line.partition("=")
                section.setdefault(key.strip(), []).append(value.strip())
        return parsed

    def command(self, instance: str | None = None) -> list[str]:
        (exec_start,) = self.service["ExecStart"]
        argv = shlex.split(_specifiers(exec_start.lstrip("-@+!"), instance))
        if argv[0] == INSTALLED_EXE:
            argv[0] = vardkoll_exe()
        return argv

    def environment(self, files: dict[str, Path], instance: str | None = None) -> dict[str, str]:
        """What systemd gives the process: PATH, then each Environment= line, then each EnvironmentFile
        (mapped to `files`), later ones winning: systemd lets the files override Environment=."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        for line in self.service.get("Environment", []):
            for assignment in shlex.split(_specifiers(line, instance)):
                key, _, value = assignment.partition("=")
                env[key] = value
        for name in self.service.get("EnvironmentFile", []):
            optional = name.startswith("-")
            path = files.get(name.lstrip("-"))
            if path is None:
                raise AssertionError(f"{self.path.name} reads {name}: the test has no stand-in for it")
            if path.exists() or not optional:
                env.update(read_env_file(path))
        return env


def _specifiers(text: str, instance: str | None) -> str:
    if "%i" in text and instance is None:
        raise AssertionError(f"{text!r} needs an instance name")
    return text.replace("%i", instance or "").replace("%%", "%")


def read_env_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile format: KEY=value lines, # or ; comments, optional quotes."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def write_env_file(source: Path, target: Path, values: dict[str, str]) -> None:
    """`source` with the given keys' values replaced; every key must be a setting the file has (commented
    or not), so the shipped file documents each setting the test needs."""
    text = source.read_text()
    for key, value in values.items():
        pattern = re.compile(rf"^#?\s*{re.escape(key)}=.*$", re.MULTILINE)
        assert pattern.search(text), f"{source} does not document {key}"
        text = pattern.sub(lambda _: f"{key}={value}", text, count=1)
    target.write_text(text)
    target.chmod(0o600)


def substitute(text: str, replacements: list[tuple[str, str]], where: str) -> str:
    """Regex replacements that must each match at least once."""
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count, f"{where}: no line matches {pattern!r}; update the test's substitutions"
    return text


# -- processes -----------------------------------------------------------------------------------------


class Process:
    """One long-running command with its log file; kill -9 and start again like systemd's Restart=."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], folder: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 20) -> int | None:
        if self.process is None:
            return None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def log(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


def run_unit_once(unit: UnitFile, env_files: dict[str, Path], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """A Type=oneshot unit: run its command to the end."""
    assert unit.service.get("Type") == ["oneshot"], f"{unit.path.name} is not a oneshot unit"
    return subprocess.run(unit.command(), env=unit.environment(env_files), capture_output=True, text=True, timeout=timeout_s)


class ServerSlot(Process):
    """One `vardkoll-server@PORT.service`."""

    def __init__(self, unit: UnitFile, env_files: dict[str, Path], folder: Path) -> None:
        self.port = free_port()
        self.instance = str(self.port)
        super().__init__(f"server-{self.port}", unit.command(self.instance), unit.environment(env_files, self.instance), folder)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/health/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 60) -> None:
        assert wait_until(lambda: not self.running or self.ready(), timeout_s, interval_s=0.3) and self.running, (
            f"{self.name} did not become ready:\n{self.log()}"
        )


# -- the broker ----------------------------------------------------------------------------------------


class DeployedBroker(Broker):
    """deploy/broker/mosquitto.conf with the dynsec plugin, on a free loopback port with the test's certificates."""

    def __init__(self, folder: Path, tls_dir: Path, admin: tuple[str, str]) -> None:
        binary = find_binary()
        assert binary, "mosquitto is not installed"
        folder.mkdir(parents=True, exist_ok=True)
        self.tls_dir = tls_dir
        super().__init__(binary, folder, dynsec=admin)

    @property
    def url(self) -> str:
        return f"mqtts://{self.host}:{self.port}"

    def _write_config(self) -> None:
        plugin = find_dynsec_plugin()
        assert plugin, "the dynamic security plugin is not installed"
        text = substitute(
            (DEPLOY / "broker" / "mosquitto.conf").read_text(),
            [
                (r"^plugin /usr/lib/\S+/mosquitto_dynamic_security\.so$", f"plugin {plugin}"),
                (r"^plugin_opt_config_file /var/lib/mosquitto/dynamic-security\.json$", f"plugin_opt_config_file {self.dynsec_path}"),
                (r"^listener 8883$", f"listener {self.port} {self.host}"),
                (r"^certfile /etc/mosquitto/certs/\S+\.crt$", f"certfile {self.tls_dir / 'broker.crt'}"),
                (r"^keyfile /etc/mosquitto/certs/\S+\.key$", f"keyfile {self.tls_dir / 'broker.key'}"),
                (r"^persistence_location /var/lib/mosquitto/$", f"persistence_location {self.persistence_dir}/"),
                (r"^log_dest syslog$", "log_dest stderr"),
            ],
            "deploy/broker/mosquitto.conf",
        )
        if running_as_root():
            text += "\nuser root\n"  # as in tests/support/mosquitto.py: the persistence folder is root's
        self.config_path.write_text(text)

    def ctrl_options(self, admin: tuple[str, str]) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "--cafile", str(self.tls_dir / "ca.crt"), "-u", admin[0], "-P", admin[1]]


# -- nginx ---------------------------------------------------------------------------------------------


class Nginx(Process):
    """deploy/nginx/vardkoll.conf inside a minimal main config (Debian's nginx.conf includes it the same way)."""

    def __init__(self, folder: Path, tls_dir: Path, upstream_ports: list[int]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.http_port, self.https_port = free_port(), free_port()
        servers = "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in upstream_ports)
        upstream = substitute(
            (DEPLOY / "nginx" / "vardkoll-upstream.conf").read_text(),
            [
                (r"^    server 127\.0\.0\.1:8001 .*\n    server 127\.0\.0\.1:8002 .*\n", servers),
            ],
            "deploy/nginx/vardkoll-upstream.conf",
        )
        (folder / "vardkoll-upstream.conf").write_text(upstream)
        site = substitute(
            (DEPLOY / "nginx" / "vardkoll.conf").read_text(),
            [
                (r"^include /etc/nginx/vardkoll-upstream\.conf;$", f"include {folder / 'vardkoll-upstream.conf'};"),
                (r"^    listen 80;$", f"    listen 127.0.0.1:{self.http_port};"),
                (r"^    listen \[::\]:80;\n", ""),
                (r"^    listen 443 ssl http2;$", f"    listen 127.0.0.1:{self.https_port} ssl http2;"),
                (r"^    listen \[::\]:443 ssl http2;\n", ""),
                (r"^    ssl_certificate     \S+;", f"    ssl_certificate     {tls_dir / 'web.crt'};"),
                (r"^    ssl_certificate_key \S+;", f"    ssl_certificate_key {tls_dir / 'web.key'};"),
            ],
            "deploy/nginx/vardkoll.conf",
        )
        (folder / "vardkoll.conf").write_text(site)
        temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir(exist_ok=True)
        main = "\n".join(
            [
                "user root root;" if running_as_root() else "",  # workers must read the test's root-only folders
                "worker_processes 1;",
                f"pid {folder / 'nginx.pid'};",
                f"error_log {folder / 'error.log'} warn;",
                "events { worker_connections 512; }",
                "http {",
                f"    access_log {folder / 'access.log'};",
                *(f"    {name}_temp_path {path};" for name, path in temp.items()),
                f"    include {folder / 'vardkoll.conf'};",
                "}",
            ]
        )
        self.config = folder / "nginx.conf"
        self.config.write_text(main + "\n")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.base = [nginx, "-c", str(self.config), "-e", str(folder / "error.log")]
        super().__init__("nginx", [*self.base, "-g", "daemon off;"], dict(os.environ), folder)

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, "-t"], capture_output=True, text=True, timeout=30)

    def start(self) -> "Nginx":
        super().start()
        assert wait_until(lambda: not self.running or port_accepts("127.0.0.1", self.https_port), 15, interval_s=0.1) and self.running, tail(self.log_path)
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


def spki_sha256(certificate: Path) -> str:
    """The base64 SHA-256 of a certificate's public key, as Chromium's --ignore-certificate-errors-spki-list takes it."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    return base64.b64encode(hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()).decode()
