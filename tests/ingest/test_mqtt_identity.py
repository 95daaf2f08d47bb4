"""A server process's MQTT client id is stable per slot, never made from the process id (issue 12, item 1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from vardkoll.server.ingest.mqtt_identity import ServerIdentity

BROKER = "mqtt://127.0.0.1:1883"
HOST = socket.gethostname().split(".")[0]


def test_a_configured_instance_names_the_client_id():
    assert ServerIdentity("2", BROKER).client_id == f"vardkoll-server-{HOST}-2"


def test_without_an_instance_each_process_takes_the_lowest_free_slot_and_a_restart_takes_it_again(tmp_path):
    first, second = ServerIdentity(None, BROKER, tmp_path), ServerIdentity(None, BROKER, tmp_path)
    assert (first.client_id, second.client_id) == (f"vardkoll-server-{HOST}-1", f"vardkoll-server-{HOST}-2")
    first.release()  # the process ends (the lock dies with it, kill -9 too)
    again = ServerIdentity(None, BROKER, tmp_path)
    assert again.client_id == f"vardkoll-server-{HOST}-1"
    assert str(os.getpid()) not in again.client_id


def test_a_killed_process_leaves_its_slot_free(tmp_path):
    code = (
        "import sys, os; from pathlib import Path; from vardkoll.server.ingest.mqtt_identity import ServerIdentity; "
        f"i = ServerIdentity(None, {BROKER!r}, Path({str(tmp_path)!r})); print(i.client_id, flush=True); os.kill(os.getpid(), 9)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"vardkoll-server-{HOST}-1"
    assert ServerIdentity(None, BROKER, tmp_path).client_id == f"vardkoll-server-{HOST}-1"
