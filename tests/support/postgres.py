"""A throwaway PostgreSQL cluster for one test session, and a fresh database per test.

The cluster lives in a temporary folder: its own data directory, a unix socket directory, a log, and a
TCP listener on a free loopback port. initdb refuses to run as root, so as root every PostgreSQL
command runs as the `postgres` user through `su`; as any other user they run directly.
Durability settings are off (fsync, full_page_writes): the cluster is deleted after the session.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import free_port, running_as_root, tail

HOST = "127.0.0.1"
SUPERUSER = "postgres"
SERVICE_ACCOUNT = "postgres"  # who runs the cluster when the tests run as root


class PostgresError(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL under /usr/lib/postgresql/*/bin, else initdb/pg_ctl on PATH."""

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/bin", path)
        return tuple(int(part) for part in match.group(1).split(".") if part) if match else ()

    debian = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)]
    for bindir in reversed(debian):
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def missing_reason() -> str | None:
    """Why no cluster can be started here, or None when it can."""
    if find_bindir() is None:
        return "PostgreSQL is not installed (no initdb and pg_ctl under /usr/lib/postgresql/*/bin or on PATH)"
    if running_as_root():
        try:
            pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            return f"running as root, but there is no '{SERVICE_ACCOUNT}' user to run PostgreSQL as (initdb refuses root)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    return None


@dataclass
class PostgresCluster:
    """One running cluster. `url(name)` gives a SQLAlchemy URL; `create_database()` a fresh database."""

    bindir: Path
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vardkoll-pg-")))
    host: str = HOST
    port: int = 0
    user: str = SUPERUSER
    version: str = ""
    _running: bool = False

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "sock"

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> "PostgresCluster":
        self._prepare_folders()
        self._run([self.bindir / "initdb", "-D", self.data_dir, "-U", self.user, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"], timeout=120)
        self.version = (self.data_dir / "PG_VERSION").read_text().strip()
        for attempt in range(attempts):
            self.port = free_port(self.host)
            self._configure()
            result = self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-l", self.log_path, "-w", "-t", "60", "start"], timeout=90, check=False)
            if result.returncode == 0:
                self._running = True
                atexit.register(self.stop)  # a backstop if the session ends without its teardown
                return self
            if attempt + 1 == attempts or "could not bind" not in tail(self.log_path, 10):
                raise PostgresError(
                    f"pg_ctl start failed (exit {result.returncode}):\n{result.stdout}{result.stderr}\n--- {self.log_path}:\n{tail(self.log_path)}"
                )
        raise AssertionError("unreachable")

    def restart(self, mode: str = "immediate") -> None:
        """Stop (`immediate`: like a crash, every connection cut, recovery at start) and start again on the same port."""
        result = self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-l", self.log_path, "-m", mode, "-w", "-t", "60", "restart"], timeout=90, check=False)
        if result.returncode != 0:
            raise PostgresError(f"pg_ctl restart failed (exit {result.returncode}):\n{result.stdout}{result.stderr}\n{tail(self.log_path)}")

    def stop(self) -> None:
        """Fast shutdown (`pg_ctl stop -m fast`), then delete the cluster's folder."""
        if self._running:
            self._running = False
            result = self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", "60", "stop"], timeout=90, check=False)
            if result.returncode != 0:
                self._kill_postmaster()
        shutil.rmtree(self.base, ignore_errors=True)

    def reload(self) -> None:
        self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "reload"], timeout=30)

    def _prepare_folders(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if running_as_root():
            account = pwd.getpwnam(SERVICE_ACCOUNT)
            for path in (self.base, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
            self.base.chmod(0o755)

    def _configure(self) -> None:
        """Settings go in postgresql.conf (the last line of a name wins), so no shell quoting is involved."""
        settings = {
            "port": str(self.port),
            "listen_addresses": f"'{self.host}'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_min_messages": "warning",
            "log_lock_waits": "on",  # a slow test then says who waited for whom
            "deadlock_timeout": "200ms",
        }
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# tests/support/postgres.py\n" + "".join(f"{name} = {value}\n" for name, value in settings.items()))

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _run(self, args: list, timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(a) for a in args]
        if running_as_root():
            argv = ["su", SERVICE_ACCOUNT, "-s", "/bin/sh", "-c", shlex.join(argv)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(argv, cwd=self.base, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise PostgresError(f"{shlex.join(argv)} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    # -- databases -----------------------------------------------------------------------------------

    def _admin(self):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True, connect_timeout=10)

    def create_database(self, prefix: str = "t_") -> str:
        name = f"{prefix}{secrets.token_hex(6)}"
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a test database, closing connections a test left open."""
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster() -> PostgresCluster:
    bindir = find_bindir()
    if bindir is None:
        raise PostgresError(missing_reason() or "PostgreSQL is not installed")
    cluster = PostgresCluster(bindir)
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise
