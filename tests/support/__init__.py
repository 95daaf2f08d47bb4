"""Test infrastructure that runs real services: a throwaway PostgreSQL cluster and Mosquitto brokers.

The fixtures live in `support.plugin` (loaded by `tests/conftest.py`). Policy when a service is not
installed: on CI (the environment variable CI is set) the tests that need it fail loudly, because CI
must prove the product against the real thing; on a developer machine they are skipped with a reason.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def service_missing(reason: str) -> None:
    """Fail (on CI) or skip (elsewhere) the test that needs a service this machine cannot run."""
    if on_ci():
        pytest.fail(f"{reason} (CI must test against it: install it, see .ci/run)", pytrace=False)
    pytest.skip(reason)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the caller retries if another process takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def tail(path: os.PathLike[str] | str, lines: int = 30) -> str:
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
