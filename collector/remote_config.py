"""Remote config versions: a retained document on `{prefix}/{unit}/{device}/config`, applied with rollback.

The document (published retained by the server or an operator, see docs/collector.md):

    {"v": 1, "version": "2026-11-23.2", "config": {"mqtt": {...}, "publisher": {...}, "poll_interval_s": 5, "connectors": [...]}}

`config` overrides those sections of the device's own config file (`protocol.remote_config.REMOTE_KEYS`);
the unit, device, outbox and pseudonym secret stay local, and a password never travels over MQTT (`mqtt.password_file`
only). A document is handled once per `version`: a version already seen (applied, refused or rolled
back) is ignored, so the retained message redelivered after every reconnect changes nothing.

This module is the document and the state on disk; the agent does the applying (`Agent.apply_remote`).
The state file (mode 0600, written atomically) holds the last good remote config, so it survives
restarts, and a `pending` trial, so a crash during a trial counts as a failed trial at the next start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from vardkoll.protocol.remote_config import ConfigDocumentError, check_sections, decode_config_document

from .config import CollectorConfig, parse_config
from .connectors import REGISTRY
from .settings import SettingsError, as_document


class RemoteConfigRefused(ValueError):
    """The document cannot be applied; the reason is safe to log and report (it quotes no values)."""


@dataclass(frozen=True)
class RemoteConfig:
    version: str
    overrides: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "config": self.overrides}


def parse_document(payload: bytes) -> RemoteConfig:
    try:
        version, overrides = decode_config_document(payload)
    except ConfigDocumentError as exc:
        raise RemoteConfigRefused(str(exc)) from None
    return RemoteConfig(version, overrides)


def merge(base: CollectorConfig, remote: RemoteConfig) -> CollectorConfig:
    """The device's own config with the remote sections laid over it (a section's keys one by one)."""
    try:
        check_sections(remote.overrides, remote.version)
    except ConfigDocumentError as exc:
        raise RemoteConfigRefused(str(exc)) from None
    document = as_document(base)  # in memory only: it holds the password
    for key, value in remote.overrides.items():
        if key == "update":
            continue  # a software update offer, not config (the agent hands it to collector/updates/)
        if key in ("mqtt", "publisher") and isinstance(value, dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    try:
        merged = parse_config(document)
        for index, entry in enumerate(merged.connectors):
            connector = REGISTRY.get(entry.type)
            if connector is None:
                raise RemoteConfigRefused(f"version {remote.version}: unknown connector type {entry.type!r}")
            try:
                connector.Config.parse(entry.settings)
            except SettingsError as exc:
                raise SettingsError([(f"connectors.{index}.{place}" if place else f"connectors.{index}", message) for place, message in exc.problems]) from None
    except SettingsError as exc:
        raise RemoteConfigRefused(f"version {remote.version}: {exc}") from None
    return merged


@dataclass
class RemoteState:
    """What is on disk: the last good remote config, the last version handled, the last refusal, a trial."""

    applied: RemoteConfig | None = None
    last_seen: str | None = None
    outcome: str = "local"  # local | applied | refused | rolled_back
    rejected_version: str | None = None
    rejected_reason: str | None = None
    pending: RemoteConfig | None = None

    def status(self) -> dict[str, Any]:
        """The heartbeat's `config` object."""
        status: dict[str, Any] = {"version": self.applied.version if self.applied else None, "state": self.outcome}
        if self.rejected_version is not None:
            status["rejected"] = {"version": self.rejected_version, "reason": self.rejected_reason}
        return status


def load_state(path: Path) -> RemoteState:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return RemoteState()
    except (OSError, ValueError):
        return RemoteState(outcome="local", rejected_reason=f"{path} could not be read; the local config is used")

    def remote(value: Any) -> RemoteConfig | None:
        return RemoteConfig(value["version"], value["config"]) if isinstance(value, dict) else None

    return RemoteState(
        applied=remote(document.get("applied")),
        last_seen=document.get("last_seen"),
        outcome=document.get("outcome", "local"),
        rejected_version=document.get("rejected_version"),
        rejected_reason=document.get("rejected_reason"),
        pending=remote(document.get("pending")),
    )


def save_state(path: Path, state: RemoteState) -> None:
    document = {
        "applied": state.applied.as_json() if state.applied else None,
        "last_seen": state.last_seen,
        "outcome": state.outcome,
        "rejected_version": state.rejected_version,
        "rejected_reason": state.rejected_reason,
        "pending": state.pending.as_json() if state.pending else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, json.dumps(document, ensure_ascii=False, default=str).encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
