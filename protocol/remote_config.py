"""The remote config document on `{prefix}/{unit}/{device}/config` (retained, server → collector).

    {"v": 1, "version": "2026-11-23.2", "config": {"mqtt": {...}, "publisher": {...}, "poll_interval_s": 5, "connectors": [...]}}

Only the envelope and which sections may travel are fixed here; the collector validates the sections
against its own config model (collector/remote_config.py) and reports what it refuses in its heartbeat.
"""

from __future__ import annotations

import json
from typing import Any

# What a collector takes from the centre; the unit, device, outbox and pseudonym secret stay on the device.
# `update` is not config but a signed software update offer (collector/updates/), carried the same way.
REMOTE_KEYS = frozenset({"poll_interval_s", "mqtt", "publisher", "connectors", "update"})
MAX_VERSION_CHARS = 64


class ConfigDocumentError(ValueError):
    """The document breaks a rule; the message names the rule and never quotes a value."""


def check_sections(config: Any, version: str) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise ConfigDocumentError('the config document needs a "config" object')
    unknown = sorted(set(config) - REMOTE_KEYS)
    if unknown:
        raise ConfigDocumentError(f"version {version}: {', '.join(unknown)} cannot be set remotely (only {', '.join(sorted(REMOTE_KEYS))})")
    if isinstance(config.get("mqtt"), dict) and "password" in config["mqtt"]:
        raise ConfigDocumentError(f"version {version}: mqtt.password cannot be sent over MQTT; use mqtt.password_file")
    if "update" in config and not isinstance(config["update"], dict):
        raise ConfigDocumentError(f"version {version}: update must be the signed document made by packaging/sign.py")
    return config


def _version(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_VERSION_CHARS:
        raise ConfigDocumentError(f'the config document needs a "version" (a string of 1–{MAX_VERSION_CHARS} characters)')
    return value.strip()


def encode_config_document(version: str, config: dict[str, Any]) -> bytes:
    version = _version(version)
    return json.dumps({"v": 1, "version": version, "config": check_sections(config, version)}, ensure_ascii=False).encode()


def decode_config_document(payload: bytes) -> tuple[str, dict[str, Any]]:
    """(version, sections) of a document whose envelope is right, or ConfigDocumentError. The sections
    are not checked here, so a refusal can name its version (`check_sections`)."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise ConfigDocumentError("the config document is not JSON") from None
    if not isinstance(document, dict) or document.get("v") != 1:
        raise ConfigDocumentError('the config document must be an object with "v": 1')
    version = _version(document.get("version"))
    config = document.get("config")
    if not isinstance(config, dict):
        raise ConfigDocumentError(f'version {version}: the config document needs a "config" object')
    return version, config
