"""Publish a device's remote config version: a retained document on `{prefix}/{unit}/{device}/config`.

The collector applies a new `version` once, keeps it as its last good config when it can reconnect with
it, and otherwise rolls back and reports the refusal in its heartbeat (docs/collector.md, "Remote config
versions"). Here only the envelope and the sections' names are checked (`protocol.remote_config`); the collector
validates the content against its own config and reports what it refuses.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, HSA_ID_RULE, is_device_id, is_hsa_id
from vardkoll.protocol.remote_config import ConfigDocumentError, encode_config_document
from vardkoll.protocol.topics import DEFAULT_PREFIX, config_topic


class RemoteConfigError(ValueError):
    """The document cannot be published; the message says what is wrong."""


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
    ca_file: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    timeout_s: float = 10.0,
) -> str:
    """Publish the document retained with QoS 1 and wait for the broker's PUBACK; returns the topic."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    if not is_hsa_id(unit):
        raise RemoteConfigError(f"the unit {HSA_ID_RULE}")
    if not is_device_id(device):
        raise RemoteConfigError(f"the device id {DEVICE_ID_RULE}")
    try:
        payload = encode_config_document(version, config)
    except ConfigDocumentError as exc:
        raise RemoteConfigError(str(exc)) from None
    topic = config_topic(unit, device, prefix)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"vardkoll-config-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=ca_file)
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
