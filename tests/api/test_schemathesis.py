"""schemathesis against the OpenAPI document of a running server on PostgreSQL: no request gets a 500.

Every operation but the live stream (it never ends), with an admin token, a few examples each and a
fixed seed, so the run is bounded (well under a minute) and a failure can be reproduced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support import free_port, wait_until

TOKEN = "fuzz-test-Admin-token-0123456789"
BIN = Path(sys.executable).parent


@pytest.mark.postgresql
def test_schemathesis_finds_no_server_error(postgres_database_url, tmp_path):
    st = shutil.which("st", path=str(BIN)) or shutil.which("st")
    assert st, "schemathesis is not installed (pip install -e '.[dev]')"
    port = free_port()
    env = {
        **os.environ,
        "VARDKOLL_DATABASE_URL": postgres_database_url,
        "VARDKOLL_ADMIN_TOKEN": TOKEN,
        "VARDKOLL_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
    }  # no broker: the API serves without one
    subprocess.run([str(BIN / "vardkoll"), "migrate"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([str(BIN / "vardkoll"), "server", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _up(base), 30), "the server did not start"
        done = subprocess.run(
            [
                st,
                "run",
                f"{base}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "8",
                "--seed",
                "12",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--exclude-path",
                "/api/v1/live",
                # without a broker the readiness probe answers 503 by design (tests/monitoring/test_metrics.py)
                "--exclude-path",
                "/api/v1/health/ready",
                "--request-timeout",
                "20",
                "--generation-allow-x00",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=tmp_path,
        )  # its example cache stays out of the repository
    finally:
        server.terminate()
        server.wait(30)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
