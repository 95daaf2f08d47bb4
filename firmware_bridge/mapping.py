"""From a device press to a v1 protocol event: pure functions, time passed in.

Identity: a press is known by (device id, store id, local sequence id); the event id is a keyed hash of
exactly that, so a press sent twice (a retry, a reset, a bridge restart) always becomes the same event,
which the collector outbox and the server count once.

Pseudonyms are keyed hashes (HMAC-SHA-256) written in letters only: no digit ever appears in an id or a
case pseudonym made here, so no run of digits can form a personal identity number (SPEC 3.2).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from .config import DeviceConfig, InputMapping
from .messages import EventMsg

# 32 letters: each carries 5 bits. 24 letters = 120 bits of the HMAC.
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEF"
_PSEUDONYM_LETTERS = 24


def letters_hash(key: bytes, *parts: object) -> str:
    """HMAC-SHA-256 over the parts (unambiguously joined), as 24 letters (A–F, a–z)."""
    message = b"\x1f".join(str(part).encode("utf-8") for part in parts)
    digest = int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:15], "big")
    return "".join(_LETTERS[(digest >> (5 * i)) & 0x1F] for i in range(_PSEUDONYM_LETTERS))


def event_id(key: bytes, device_id: str, store_id: int, local_seq: int) -> str:
    return "fw-" + letters_hash(key, "event", device_id, store_id, local_seq)


def case_pseudonym(key: bytes, unit: str, device: DeviceConfig, press: EventMsg, store_id: int) -> str:
    """The case a press belongs to.

    A dispenser ticket opens a case known by (dispenser, ticket ref). A panel press that carries the
    ticket ref of its `ticket_source` dispenser names the same case; one without a ref names a case of
    its own (the server then counts an assessment without contact: honest, not guessed)."""
    if device.kind == "ticket_dispenser":
        return "k" + letters_hash(key, "case", unit, device.device_id, press.ref or press.local_seq)
    if device.ticket_source is not None and press.ref:
        return "k" + letters_hash(key, "case", unit, device.ticket_source, press.ref)
    return "k" + letters_hash(key, "case-unlinked", unit, device.device_id, store_id, press.local_seq)


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a press happened, as the bridge decided it."""

    at: datetime | None  # None: hold the press back (policy "hold" and no time sync)
    source: str  # "device", "receive_time_unsynced", "receive_time_skew", "held_unsynced"


def stamp(press: EventMsg, received_at: datetime, *, unsynced_policy: str, max_future_skew_s: float) -> Stamp:
    """The event time: the device's clock once it is synced, else the policy decides."""
    if press.time_synced:
        try:
            device_at = datetime.fromtimestamp(press.device_time_ms / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return Stamp(received_at, "receive_time_skew")
        if device_at - received_at > timedelta(seconds=max_future_skew_s):
            return Stamp(received_at, "receive_time_skew")
        return Stamp(device_at, "device")
    if unsynced_policy == "hold":
        return Stamp(None, "held_unsynced")
    return Stamp(received_at, "receive_time_unsynced")


def build_event(
    key: bytes,
    device: DeviceConfig,
    mapping: InputMapping,
    press: EventMsg,
    store_id: int,
    at: datetime,
    tz: ZoneInfo,
    event_device: str | None = None,
) -> dict[str, Any]:
    """The v1 event (a dict, to be checked with `protocol.validate_event`)."""
    event: dict[str, Any] = {
        "v": 1,
        "id": event_id(key, device.device_id, store_id, press.local_seq),
        "type": mapping.event,
        "unit": device.unit,
        "at": at.astimezone(tz).isoformat(timespec="milliseconds"),
        "case": case_pseudonym(key, device.unit, device, press, store_id),
    }
    if event_device is not None:
        event["device"] = event_device
    if mapping.event == "care.contact":
        event["listed"] = mapping.listed
        event["channel"] = mapping.channel
    else:
        event["profession"] = mapping.profession
        event["form"] = mapping.form
    return event
