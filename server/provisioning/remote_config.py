"""Publish a device's remote config version: a retained document on `{prefix}/{unit}/{device}/config`.

The collector applies a new `version` once, keeps it as its last good config when it can reconnect with
it, and otherwise rolls back and reports the refusal in its heartbeat (docs/collector.md, "Remote config
versions"). Here only the envelope is checked; the collector validates the content against its own
config and reports what it refuses.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from typing import Any

from vardkoll.protocol.events import DEVICE_ID_PATTERN, HSA_ID_PATTERN
from vardkoll.protocol.topics import DEFAULT_PREFIX, config_topic

# What a collector takes from the centre; the rest of its config stays on the device.
REMOTE_KEYS = frozenset({"poll_interval_s", "mqtt", "publisher", "connectors"})


class RemoteConfigError(ValueError):
    """The document cannot be published; the message says what is wrong."""


def config_document(version: str, config: dict[str, Any]) -> bytes:
    version = version.strip()
    if not version or len(version) > 64:
        raise RemoteConfigError("the version must be 1–64 characters")
    if not isinstance(config, dict):
        raise RemoteConfigError("the config must be an object of sections")
    unknown = sorted(set(config) - REMOTE_KEYS)
    if unknown:
        raise RemoteConfigError(f"{', '.join(unknown)} cannot be set remotely (only {', '.join(sorted(REMOTE_KEYS))})")
    if isinstance(config.get("mqtt"), dict) and "password" in config["mqtt"]:
        raise RemoteConfigError("mqtt.password must not travel over MQTT; set mqtt.password_file instead")
    return json.dumps({"v": 1, "version": version, "config": config}, ensure_ascii=False).encode()


def publish_config(
    unit: str,
    device: str,
    version: str,
    config: dict[str, Any],
    *,
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    prefix: str = DEFAULT_PREFIX,
    timeout_s: float = 10.0,
) -> str:
    """Publish the document retained with QoS 1 and wait for the broker's PUBACK; returns the topic."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    if not re.search(HSA_ID_PATTERN, unit):
        raise RemoteConfigError("the unit must be an HSA-id, e.g. SE2321000016-15SF")
    if not re.search(DEVICE_ID_PATTERN, device):
        raise RemoteConfigError("the device id must be 1–64 characters of A–Z, a–z, 0–9 and . _ -")
    payload = config_document(version, config)
    topic = config_topic(unit, device, prefix)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"vardkoll-config-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties=None):  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set()
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise RemoteConfigError(f"cannot reach the broker at {host}:{port} ({type(exc).__name__})") from None
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or refused:
            raise RemoteConfigError(f"the broker at {host}:{port} refused the connection ({refused[0] if refused else 'no answer'})")
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise RemoteConfigError(f"the broker did not confirm the document within {timeout_s:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
    return topic
