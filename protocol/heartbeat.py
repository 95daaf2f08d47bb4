"""The status a collector keeps retained on `{prefix}/{unit}/{device}/status` (SPEC 3.3), read into
the fields the server uses and nothing else.

The payload is either the last will `offline` or a JSON heartbeat (collector/publisher.py
`Publisher.heartbeat`). Only the known fields below are kept, each checked for its type and bounds;
a field that breaks its rule is dropped, and so is every unknown field, so the server never keeps
what a device made up. A heartbeat that holds a personal number anywhere (SPEC 3.2), kept field or
not, is refused whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import orjson

from .field_rules import is_device_id
from .personal_number import find_personal_number

__all__ = ["MAX_STATUS_BYTES", "DeviceStatus", "StatusRefused", "read_status"]

MAX_STATUS_BYTES = 8192
MAX_COUNT = 2**53  # counters above this are not a real device's
MAX_REASON_CHARS = 300
CONFIG_STATES = ("local", "applied", "refused", "rolled_back")
UPDATE_STATES = ("current", "staged", "installed", "refused", "rolled_back")


class StatusRefused(ValueError):
    """A status payload the server keeps nothing of; `reason` names no value and is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DeviceStatus:
    online: bool
    heartbeat: dict[str, Any] | None  # the known fields of a JSON heartbeat; None for the last will


class _Drop(Exception):
    """The field breaks its rule: leave it out."""


Rule = Callable[[Any], Any]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _Drop
    return value


def _one_of(*allowed: Any) -> Rule:
    def rule(value: Any) -> Any:
        if not any(type(value) is type(choice) and value == choice for choice in allowed):  # True is not 1
            raise _Drop
        return value

    return rule


_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+~-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _version(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise _Drop
    return value


def _version_or_none(value: Any) -> str | None:
    return None if value is None else _version(value)


def _device(value: Any) -> str:
    if not isinstance(value, str) or not is_device_id(value):
        raise _Drop
    return value


def _time(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise _Drop
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Drop from None
    if moment.tzinfo is None:
        raise _Drop
    return moment.isoformat()


def _time_or_none(value: Any) -> str | None:
    return None if value is None else _time(value)


def _reason(value: Any) -> str:
    """Free text for people (why a clock or a config was refused): bounded, one line, shown escaped."""
    if not isinstance(value, str) or _CONTROL.search(value):
        raise _Drop
    return value[:MAX_REASON_CHARS]


def _object(fields: dict[str, Rule]) -> Rule:
    def rule(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Drop
        kept = {}
        for name, field_rule in fields.items():
            if name in value:
                try:
                    kept[name] = field_rule(value[name])
                except _Drop:
                    pass
        return kept

    return rule


_HEARTBEAT = _object(
    {
        "status": _one_of("online", "offline"),
        "device": _device,
        "version": _version,
        "uptime_s": _count,
        "at": _time,
        "clock": _object(
            {
                "ntp_synced": _one_of(True, False, "unknown"),
                "state": _one_of("ok", "implausible", "unvouched", "unknown"),
                "jumps": _count,
                "floor": _time,
                "reason": _reason,
            }
        ),
        "outbox": _object(
            {
                **{name: _count for name in ("held", "depth", "bytes", "added", "dropped", "refused", "committed", "rejected")},
                "oldest_at": _time_or_none,
                "drop_policy": _one_of("drop_oldest", "drop_newest"),
            }
        ),
        "publisher": _object({name: _count for name in ("in_flight_batches", "batches_sent", "resends", "batches_refused")}),
        "config": _object(
            {
                "version": _version_or_none,
                "state": _one_of(*CONFIG_STATES),
                "rejected": _object({"version": _version, "reason": _reason}),
            }
        ),
        "update": _object(
            {
                "running": _version,
                "state": _one_of(*UPDATE_STATES),
                "offered": _version,
                "rejected": _object({"version": _version, "reason": _reason}),
            }
        ),
    }
)


def read_status(payload: bytes) -> DeviceStatus:
    """The status a device published, or StatusRefused with a reason."""
    if len(payload) > MAX_STATUS_BYTES:
        raise StatusRefused(f"status is larger than {MAX_STATUS_BYTES} bytes")
    if payload.strip() in (b"offline", b'"offline"'):
        return DeviceStatus(online=False, heartbeat=None)
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise StatusRefused("status is neither 'offline' nor a JSON object") from None
    if not isinstance(document, dict):
        raise StatusRefused("status is neither 'offline' nor a JSON object")
    where = find_personal_number(document)
    if where is not None:
        raise StatusRefused(f"status contains a personal identity number (field '{where}'); nothing of it was kept")
    heartbeat = _HEARTBEAT(document)
    if find_personal_number(heartbeat) is not None:  # what is kept, as kept (times are re-written)
        raise StatusRefused("status contains a personal identity number; nothing of it was kept")
    return DeviceStatus(online=heartbeat.get("status") != "offline", heartbeat=heartbeat)
