"""The config file, the dependency promise (no FastAPI/SQLModel on a Pi), and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from support import wait_until
from vardkoll.collector.config import ConfigError, load_config
from vardkoll.collector.connectors import REGISTRY

from .events import DEVICE, UNIT

EXAMPLE = Path(__file__).parents[2] / "deploy" / "collector" / "collector.example.toml"


def test_the_example_config_is_valid_with_its_connector_config():
    config = load_config(EXAMPLE)
    assert config.mqtt.tls and config.mqtt.port == 8883
    for entry in config.connectors:
        REGISTRY[entry.type].Config.parse(entry.settings)


def test_a_typo_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(f'unit = "{UNIT}"\ndevice = "{DEVICE}"\n[outbox]\nmax_event = 5\n')
    with pytest.raises(ConfigError, match=r"c\.toml: outbox\.max_event: Extra inputs are not permitted"):
        load_config(path)


def test_a_wrong_unit_says_what_an_hsa_id_looks_like(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('unit = "VC Norrby"\ndevice = "pi-1"\n')
    with pytest.raises(ConfigError, match="HSA-id, e.g. SE2321000016-15SF"):
        load_config(path)


_NO_SERVER_STACK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fastapi", "sqlmodel", "sqlalchemy", "uvicorn", "apscheduler"):
            raise ImportError(f"the collector must not import {name}")
sys.meta_path.insert(0, Block())
import vardkoll.collector.agent, vardkoll.collector.connectors, vardkoll.collector.__main__, vardkoll.collector.doctor
print("ok")
"""


def test_the_collector_imports_without_the_server_stack():
    result = subprocess.run([sys.executable, "-c", _NO_SERVER_STACK], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


_ONLY_THE_CONFIGURED_CONNECTORS = """
import sys
import vardkoll.collector.__main__
from vardkoll.collector.connectors import REGISTRY
REGISTRY["callback_csv"]
print("httpx" in sys.modules)
REGISTRY["fhir_r4"]
print("httpx" in sys.modules)
"""


def test_a_connector_module_is_imported_only_when_its_connector_is_asked_for():
    # SPEC 6's 40 MB: httpx (the FHIR connector's) is about 7 MB resident a callback-export Pi never uses.
    result = subprocess.run([sys.executable, "-c", _ONLY_THE_CONFIGURED_CONNECTORS], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "True"], result.stderr
    assert sorted(REGISTRY) == ["asterisk_queue_log", "callback_csv", "fhir_r4", "listing_export"]


_NO_PYDANTIC = """
import sys
import vardkoll.collector.__main__
print("pydantic" in sys.modules)
from vardkoll.collector.config import load_config
from vardkoll.collector.connectors import REGISTRY
config = load_config(sys.argv[1])
for entry in config.connectors:
    REGISTRY[entry.type].Config.parse(entry.settings)
print("pydantic" in sys.modules)
"""


def test_the_collector_never_imports_pydantic():
    # SPEC 6's 40 MB: pydantic costs a collector about 6 MB resident imported, 2.3 MB more with models built.
    # The entry module is the systemd unit's ExecStart (`python -m vardkoll.collector run`); then the config.
    result = subprocess.run([sys.executable, "-c", _NO_PYDANTIC, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_a_password_in_the_config_never_shows_in_its_text(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(f'unit = "{UNIT}"\ndevice = "{DEVICE}"\n[mqtt]\nusername = "u"\npassword = "hemligt-123"\n')
    config = load_config(path)
    assert config.mqtt.password_value() == "hemligt-123"
    assert "hemligt-123" not in repr(config) and "hemligt-123" not in str(config.mqtt.password)


def test_sigterm_stops_the_agent_cleanly_and_leaves_offline_as_its_status(tmp_path, mosquitto):
    config = tmp_path / "collector.toml"
    config.write_text(
        f'unit = "{UNIT}"\ndevice = "{DEVICE}"\npoll_interval_s = 0.2\n'
        f'[mqtt]\nurl = "{mosquitto.url}"\n'
        f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n'
        f'[pseudonyms]\nsecret_file = "{tmp_path / "pseudonym.key"}"\n'
        "[publisher]\nstart_jitter_s = 0\nheartbeat_interval_s = 0.5\n"
    )
    statuses: list[bytes] = []
    subscribed = threading.Event()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda c, u, m: statuses.append(bytes(m.payload))
    watcher.on_subscribe = lambda *a: subscribed.set()
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.subscribe(f"vardkoll/v1/{UNIT}/{DEVICE}/status", qos=1)
    watcher.loop_start()
    assert subscribed.wait(10)
    agent = subprocess.Popen([sys.executable, "-m", "vardkoll.collector", "run", "--config", str(config)], stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: any(s.startswith(b"{") for s in statuses), 20), "no heartbeat"
        os.kill(agent.pid, signal.SIGTERM)
        assert agent.wait(15) == 0
        assert wait_until(lambda: statuses[-1] == b"offline", 10), statuses[-3:]
    finally:
        if agent.poll() is None:
            agent.kill()
        watcher.loop_stop()
    assert (tmp_path / "pseudonym.key").stat().st_mode & 0o077 == 0
