"""Start-up and who is believed (issue 12, items 7 and 8), with real server processes.

- the broker down at start: the server serves the API, says so in /health, and connects once the
  broker is up (it used to exit);
- `uvicorn --factory vardkoll.server.app:create_app` gets the same checks as `vardkoll server`: no admin
  token or a weak one stops it; dev mode answers no connection that arrived on a non-loopback address;
- the enrollment guessing limit believes X-Forwarded-For only from VARDKOLL_TRUSTED_PROXIES (uvicorn
  believed it from loopback: 60 of 60 guesses judged).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support import free_port, wait_until
from support.mosquitto import Broker, find_binary

TOKEN = "start-test-Admin-token-0123456789"
VARDKOLL = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
UVICORN = shutil.which("uvicorn") or str(Path(sys.executable).with_name("uvicorn"))


def run(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Migrate the database (as a deployment does before its servers), then start `args`."""
    subprocess.run([VARDKOLL, "migrate"], env={**os.environ, **env}, check=True, capture_output=True)
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.terminate()
    out, _ = process.communicate(timeout=30)
    return out.decode(errors="replace")


def health(base: str) -> dict:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {}


def test_with_the_broker_down_the_server_serves_says_so_and_connects_when_it_comes(tmp_path, mosquitto_factory):
    broker_port, port = free_port(), free_port()
    env = {"VARDKOLL_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}", "VARDKOLL_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}", "VARDKOLL_ADMIN_TOKEN": TOKEN}
    server = run([VARDKOLL, "server", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: bool(health(base)), 30), stop(server)
        assert {key: value for key, value in health(base).items() if key != "version"} == {"status": "degraded", "database": "ok", "broker": "disconnected"}
        assert httpx.get(f"{base}/api/v1/units", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        folder = tmp_path / "late-broker"
        folder.mkdir()
        broker = Broker(find_binary() or "mosquitto", folder)
        broker.port = broker_port  # the address the server keeps trying
        broker.start()
        try:
            assert wait_until(lambda: health(base).get("broker") == "connected", 40), health(base)
            assert health(base)["status"] == "ok"
        finally:
            broker.stop()
    finally:
        stop(server)


@pytest.mark.parametrize("token, says", [(None, "VARDKOLL_ADMIN_TOKEN"), ("a" * 24, "too weak"), ("a" * 40, "too weak")])
def test_the_app_factory_refuses_no_admin_token_and_a_weak_one(tmp_path, token, says):
    env = {"VARDKOLL_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}", "VARDKOLL_DEV": "0", **({"VARDKOLL_ADMIN_TOKEN": token} if token else {})}
    os_env = {k: v for k, v in os.environ.items() if k != "VARDKOLL_ADMIN_TOKEN"}
    subprocess.run([VARDKOLL, "migrate"], env={**os_env, **env}, check=True, capture_output=True)
    process = subprocess.Popen(
        [UVICORN, "--factory", "vardkoll.server.app:create_app", "--host", "127.0.0.1", "--port", str(free_port())],
        env={**os_env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        pass
    out = stop(process)
    assert process.returncode not in (None, 0) and says in out, out[-2000:]
    if token:
        assert "secrets.token_urlsafe(32)" in out


def _outside_address() -> str | None:
    """This host's address on its network (no packet is sent), or None when it has none but loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_dev_mode_under_uvicorn_factory_on_all_addresses_answers_only_loopback(tmp_path):
    outside = _outside_address()
    if outside is None:
        pytest.skip("this host has no address but loopback")
    port = free_port("0.0.0.0")
    env = {"VARDKOLL_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}", "VARDKOLL_DEV": "1", "VARDKOLL_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}"}
    server = run([UVICORN, "--factory", "vardkoll.server.app:create_app", "--host", "0.0.0.0", "--port", str(port)], env)
    try:
        assert wait_until(lambda: bool(health(f"http://127.0.0.1:{port}")), 30), stop(server)
        refused = httpx.get(f"http://{outside}:{port}/api/v1/units", timeout=5)
        assert refused.status_code == 403 and "loopback" in refused.text
    finally:
        stop(server)


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_forwarded_addresses_are_believed_only_from_trusted_proxies(tmp_path, trusted):
    port = free_port()
    env = {
        "VARDKOLL_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
        "VARDKOLL_ADMIN_TOKEN": TOKEN,
        "VARDKOLL_TRUSTED_PROXIES": trusted,
        "VARDKOLL_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
    }
    server = run([VARDKOLL, "server", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: bool(health(base)), 30), stop(server)
        statuses = [
            httpx.post(f"{base}/api/v1/enroll", json={"code": "WRONG-CODE-0000", "device": "pi-1"}, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(15)
        ]
    finally:
        stop(server)
    if trusted:  # each guess from another client, as the proxy says: none reaches the limit
        assert 429 not in statuses, statuses
    else:  # the header is not believed: one client, limited after 10 failures
        assert statuses.count(429) == 5, statuses
