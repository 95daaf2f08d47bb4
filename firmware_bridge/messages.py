"""The messages of device protocol v1 (docs/firmware-protocol.md): payload layouts, little-endian.

Each message is a frozen dataclass with `MSG_TYPE`, `encode() -> bytes` (the payload) and a classmethod
`decode(payload)` that raises `MalformedMessage` for a payload of the wrong length or shape.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

PROTOCOL_VERSION = 1
MAX_DEVICE_ID = 32
MAX_UNIT = 39
MAX_ACK_SEQS = 16
EVENT_TIME_SYNCED = 0x01
_DEVICE_TEXT = re.compile(rb"[A-Za-z0-9._-]+")


class MsgType(IntEnum):
    HELLO = 0x01
    HELLO_ACK = 0x02
    EVENT = 0x03
    ACK = 0x04
    TIME = 0x05
    NACK = 0x06


class DeviceKind(IntEnum):
    TICKET_DISPENSER = 1
    BUTTON_PANEL = 2
    QUEUE_PANEL = 3


class Reason(IntEnum):
    """Reason codes in HELLO_ACK refusals and NACKs."""

    NONE = 0x00
    UNSUPPORTED_VERSION = 0x01
    UNKNOWN_DEVICE = 0x02
    WRONG_UNIT = 0x03
    WRONG_KIND = 0x04
    NOT_HELLOED = 0x05
    UNKNOWN_INPUT = 0x06
    INVALID_EVENT = 0x07
    MALFORMED = 0x08
    TIME_NOT_SYNCED = 0x09
    SINK_UNAVAILABLE = 0x0A
    UNKNOWN_TYPE = 0x0B


class MalformedMessage(ValueError):
    """A frame arrived intact but its payload does not fit its message type."""


def _text(raw: bytes, what: str, max_len: int) -> str:
    if not 1 <= len(raw) <= max_len or not _DEVICE_TEXT.fullmatch(raw):
        raise MalformedMessage(f"{what} must be 1–{max_len} characters of A–Z, a–z, 0–9 and . _ -")
    return raw.decode("ascii")


@dataclass(frozen=True, slots=True)
class Hello:
    MSG_TYPE: ClassVar[MsgType] = MsgType.HELLO
    device_id: str
    unit: str
    kind: int
    firmware: tuple[int, int, int]
    store_id: int
    protocol_version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        device = self.device_id.encode("ascii")
        unit = self.unit.encode("ascii")
        return (
            struct.pack("<BBBBBI", self.protocol_version, self.kind, *self.firmware, self.store_id)
            + bytes((len(device),))
            + device
            + bytes((len(unit),))
            + unit
        )

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        if len(payload) < 11:
            raise MalformedMessage("HELLO is shorter than its fixed part")
        version, kind, major, minor, patch, store_id = struct.unpack_from("<BBBBBI", payload)
        id_len = payload[9]
        device_raw = payload[10 : 10 + id_len]
        if len(device_raw) != id_len or len(payload) < 11 + id_len:
            raise MalformedMessage("HELLO device id runs past the payload")
        unit_len = payload[10 + id_len]
        unit_raw = payload[11 + id_len :]
        if len(unit_raw) != unit_len:
            raise MalformedMessage("HELLO unit length does not match the payload")
        return cls(
            device_id=_text(device_raw, "device id", MAX_DEVICE_ID),
            unit=_text(unit_raw, "unit", MAX_UNIT),
            kind=kind,
            firmware=(major, minor, patch),
            store_id=store_id,
            protocol_version=version,
        )


@dataclass(frozen=True, slots=True)
class HelloAck:
    MSG_TYPE: ClassVar[MsgType] = MsgType.HELLO_ACK
    accepted: bool
    reason: int
    time_ms: int

    def encode(self) -> bytes:
        return struct.pack("<BBQ", int(self.accepted), self.reason, self.time_ms)

    @classmethod
    def decode(cls, payload: bytes) -> HelloAck:
        if len(payload) != 10 or payload[0] > 1:
            raise MalformedMessage("HELLO_ACK must be 10 bytes with accepted 0 or 1")
        accepted, reason, time_ms = struct.unpack("<BBQ", payload)
        return cls(accepted=bool(accepted), reason=reason, time_ms=time_ms)


@dataclass(frozen=True, slots=True)
class EventMsg:
    MSG_TYPE: ClassVar[MsgType] = MsgType.EVENT
    local_seq: int
    input: int
    flags: int
    device_time_ms: int
    ref: int = 0

    @property
    def time_synced(self) -> bool:
        return bool(self.flags & EVENT_TIME_SYNCED)

    def encode(self) -> bytes:
        return struct.pack("<IBBQI", self.local_seq, self.input, self.flags, self.device_time_ms, self.ref)

    @classmethod
    def decode(cls, payload: bytes) -> EventMsg:
        if len(payload) != 18:
            raise MalformedMessage("EVENT must be 18 bytes")
        local_seq, input_id, flags, time_ms, ref = struct.unpack("<IBBQI", payload)
        return cls(local_seq=local_seq, input=input_id, flags=flags, device_time_ms=time_ms, ref=ref)


@dataclass(frozen=True, slots=True)
class Ack:
    MSG_TYPE: ClassVar[MsgType] = MsgType.ACK
    local_seqs: tuple[int, ...]

    def encode(self) -> bytes:
        if not 1 <= len(self.local_seqs) <= MAX_ACK_SEQS:
            raise ValueError(f"an ACK carries 1–{MAX_ACK_SEQS} sequence ids")
        return bytes((len(self.local_seqs),)) + struct.pack(f"<{len(self.local_seqs)}I", *self.local_seqs)

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        if not payload or not 1 <= payload[0] <= MAX_ACK_SEQS or len(payload) != 1 + 4 * payload[0]:
            raise MalformedMessage(f"ACK must hold a count of 1–{MAX_ACK_SEQS} and that many 4-byte ids")
        return cls(local_seqs=struct.unpack(f"<{payload[0]}I", payload[1:]))


@dataclass(frozen=True, slots=True)
class TimeSync:
    MSG_TYPE: ClassVar[MsgType] = MsgType.TIME
    time_ms: int

    def encode(self) -> bytes:
        return struct.pack("<Q", self.time_ms)

    @classmethod
    def decode(cls, payload: bytes) -> TimeSync:
        if len(payload) != 8:
            raise MalformedMessage("TIME must be 8 bytes")
        return cls(time_ms=struct.unpack("<Q", payload)[0])


@dataclass(frozen=True, slots=True)
class Nack:
    MSG_TYPE: ClassVar[MsgType] = MsgType.NACK
    reason: int
    ref_type: int = 0
    ref_frame_seq: int = 0
    ref_local_seq: int = 0

    def encode(self) -> bytes:
        return struct.pack("<BBHI", self.reason, self.ref_type, self.ref_frame_seq, self.ref_local_seq)

    @classmethod
    def decode(cls, payload: bytes) -> Nack:
        if len(payload) != 8:
            raise MalformedMessage("NACK must be 8 bytes")
        return cls(*struct.unpack("<BBHI", payload))


Message = Hello | HelloAck | EventMsg | Ack | TimeSync | Nack
MESSAGE_CLASSES: dict[int, type] = {cls.MSG_TYPE: cls for cls in (Hello, HelloAck, EventMsg, Ack, TimeSync, Nack)}


def decode_message(msg_type: int, payload: bytes) -> Message:
    """The message a frame carries. Raises `MalformedMessage` (also for an unknown type)."""
    cls = MESSAGE_CLASSES.get(msg_type)
    if cls is None:
        raise MalformedMessage(f"unknown message type 0x{msg_type:02x}")
    return cls.decode(payload)  # type: ignore[no-any-return]  # msgspec's decode returns the class it was given
