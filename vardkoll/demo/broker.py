"""A broker for the demo: the local `mosquitto` when installed, else amqtt in this process (loopback only)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class RunningBroker:
    port: int
    kind: str  # "mosquitto" | "amqtt"
    mqtt_v5: bool
    _stop: Callable[[], None] = field(repr=False)

    def stop(self) -> None:
        self._stop()


def start_broker(port: int | None = None, kind: str = "auto") -> RunningBroker:
    """`kind`: "auto" (mosquitto when installed, else amqtt), "mosquitto" or "amqtt"."""
    port = port or free_port()
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if kind == "mosquitto" and binary is None:
        raise RuntimeError("no mosquitto binary found (apt-get install mosquitto), or use --broker amqtt")
    return _start_mosquitto(binary, port) if binary and kind != "amqtt" else _start_amqtt(port)


def _start_mosquitto(binary: str, port: int) -> RunningBroker:
    folder = Path(tempfile.mkdtemp(prefix="vardkoll-demo-broker-"))
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_queued_messages 0",  # never drop QoS 1 messages for a slow subscriber
        "persistence false",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    # A session of its own: Ctrl-C reaches the demo, which stops the broker last, after the clinics
    # have said goodbye and the server has committed what it received.
    process = subprocess.Popen([binary, "-c", str(folder / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port)

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)

    return RunningBroker(port, "mosquitto", True, stop)


def _start_amqtt(port: int) -> RunningBroker:
    from amqtt.broker import Broker

    # amqtt logs its own shutdown and refused MQTT 5 connections as errors with tracebacks: not the user's concern.
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    loop = asyncio.new_event_loop()
    broker = Broker(config, loop=loop)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(broker.start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="demo-broker", daemon=True)
    thread.start()
    wait_for_port(port)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    return RunningBroker(port, "amqtt", False, stop)
