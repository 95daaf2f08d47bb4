"""From a device press to a source event for the collector's pipeline: pure functions, time passed in.

The bridge hashes nothing itself. It names a press and its case with raw references (a `SourceEvent`),
and `collector/pipeline.py`, with the bridge's scheme (`FirmwareBridgePseudonymiser` in
`collector/pseudonyms.py`), makes the event id and the case pseudonym: raw ids meet the secret there only.
Case pseudonyms follow the collector's key schedule (`collector/key_schedule.py`); event ids do not.

Identity: a press is known by (device id, store id, local sequence id), its source key; the event id is a
keyed hash of exactly that, so a press sent twice (a retry, a reset, a bridge restart) always becomes the
same event, which the collector outbox and the server count once.

The scheme writes ids and case pseudonyms in letters only: no digit ever appears in them, so no run of
digits can form a personal identity number (SPEC 3.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from vardkoll.collector.connectors.base import SourceEvent, joined_key
from vardkoll.collector.key_schedule import PeriodBook
from vardkoll.collector.pipeline import Pipeline
from vardkoll.collector.pseudonyms import FirmwareBridgePseudonymiser

from .config import DeviceConfig, InputMapping
from .messages import EventMsg

CONNECTOR = "firmware_bridge"  # the pipeline's connector name for presses (the bridge's scheme ignores it)


def bridge_pipeline(key: bytes, unit: str, event_device: str | None = None, periods: PeriodBook | None = None) -> Pipeline:
    """The pipeline that makes the events of one unit's devices (`event_device`: their `device` field).

    With `periods` (the collector's book; always so under `vardkoll bridge run`) case pseudonyms follow
    the key schedule: a ticket's case gets the key of the month of its first press."""
    return Pipeline(FirmwareBridgePseudonymiser(key), unit, event_device, periods=periods)


def press_key(device_id: str, store_id: int, local_seq: int) -> str:
    """The source key of a press: its identity, whatever is sent again or restarted."""
    return joined_key(device_id, store_id, local_seq)


def case_ref(device: DeviceConfig, press: EventMsg, store_id: int) -> tuple[str, str]:
    """The case a press belongs to, as (pseudonym kind, raw reference) for the pipeline.

    A dispenser ticket opens a case known by (unit, dispenser, ticket ref). A panel press that carries the
    ticket ref of its `ticket_source` dispenser names the same case; one without a ref names a case of
    its own (the server then counts an assessment without contact: honest, not guessed)."""
    if device.kind == "ticket_dispenser":
        return "case", joined_key(device.unit, device.device_id, press.ref or press.local_seq)
    if device.ticket_source is not None and press.ref:
        return "case", joined_key(device.unit, device.ticket_source, press.ref)
    return "case-unlinked", joined_key(device.unit, device.device_id, store_id, press.local_seq)


def source_event(device: DeviceConfig, mapping: InputMapping, press: EventMsg, store_id: int, at: datetime, tz: ZoneInfo) -> SourceEvent:
    """The press as the pipeline's input: raw references only, `at` in the bridge's time zone."""
    fields: dict[str, Any]
    if mapping.event == "care.contact":
        fields = {"listed": mapping.listed, "channel": mapping.channel}
    else:
        fields = {"profession": mapping.profession, "form": mapping.form}
    return SourceEvent(
        type=mapping.event,
        at=at.astimezone(tz),
        source_key=press_key(device.device_id, store_id, press.local_seq),
        refs={"case": case_ref(device, press, store_id)},
        fields=fields,
        clock="device",  # the device's clock synced from this one, or the receive time
        at_timespec="milliseconds",
    )


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
