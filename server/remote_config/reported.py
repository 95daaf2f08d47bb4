"""What a device says about its remote config, from the heartbeat the server keeps in the device registry:

    "config": {"version": "<in force, null for the file's own>", "state": "local" | "applied" | "refused" | "rolled_back",
               "rejected": {"version", "reason"}}

(collector/remote_config.py, `RemoteState.status`). The stored heartbeat holds only fields that passed
protocol/heartbeat.py; these are checked for type and length again, as for any stored text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from vardkoll.protocol.heartbeat import CONFIG_STATES as STATES

# What became of the newest pushed version, as far as the device has said.
OUTCOMES = ("applied", "refused", "rolled_back", "pending")
MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class ReportedConfig:
    version: str | None  # the version in force; None: the device's own file
    state: str  # one of STATES
    rejected_version: str | None
    rejected_reason: str | None
    heartbeat_at: str | None  # the device's clock when it sent the heartbeat

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"version": self.version, "state": self.state}
        if self.rejected_version is not None:
            document["rejected"] = {"version": self.rejected_version, "reason": self.rejected_reason}
        return document


def _text(value: Any, limit: int = 64) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value[:limit] if isinstance(value, str) else None


def reported_config(heartbeat: str | None) -> ReportedConfig | None:
    """The `config` object of a stored heartbeat; None when there is none (an older collector, or offline)."""
    if not heartbeat:
        return None
    try:
        beat = orjson.loads(heartbeat)
    except orjson.JSONDecodeError:
        return None
    config = beat.get("config") if isinstance(beat, dict) else None
    if not isinstance(config, dict) or config.get("state") not in STATES:
        return None
    rejected = config.get("rejected") if isinstance(config.get("rejected"), dict) else {}
    return ReportedConfig(
        _text(config.get("version")), config["state"], _text(rejected.get("version")), _text(rejected.get("reason"), MAX_REASON_CHARS), _text(beat.get("at"))
    )


def outcome_of(version: str, reported: ReportedConfig | None) -> str | None:
    """What became of pushed `version` by the device's last word: applied (in force), refused, rolled
    back, or pending (not handled yet: the device has not been online since, or is trying it now).
    None when the device reports nothing about remote config."""
    if reported is None:
        return None
    if reported.version == version:
        return "applied"
    if reported.rejected_version == version and reported.state in ("refused", "rolled_back"):
        return reported.state
    return "pending"
