"""Framing v1 of the device protocol: the Python twin of firmware/vk_proto.c.

Both implementations follow the same rules (docs/firmware-protocol.md) and are checked against the same
vectors (tests/firmware_bridge/vectors.json)::

    0x7E  stuffed( LEN | VER | TYPE | SEQ_lo | SEQ_hi | PAYLOAD[LEN] | CRC_lo | CRC_hi )

0x7E and 0x7D inside a frame travel as 0x7D, byte ^ 0x20. The CRC is CRC-16/CCITT-FALSE over LEN..PAYLOAD
(unstuffed). A receiver hunts for 0x7E; a 0x7E inside a frame cuts the frame short; every broken frame
is reported as a `FrameError` with a reason and never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterator

SOF = 0x7E
ESC = 0x7D
ESC_XOR = 0x20
FRAME_VERSION = 1
HEADER_LEN = 5
CRC_LEN = 2
MAX_PAYLOAD = 128
MAX_BODY = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
MAX_WIRE = 1 + 2 * MAX_BODY

__all__ = [
    "CRC_LEN",
    "ESC",
    "FRAME_VERSION",
    "HEADER_LEN",
    "MAX_BODY",
    "MAX_PAYLOAD",
    "MAX_WIRE",
    "SOF",
    "DecodeError",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "crc16",
    "encode_frame",
]


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, no final xor ("123456789" -> 0x29B1)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


_STUFF = {SOF: bytes((ESC, SOF ^ ESC_XOR)), ESC: bytes((ESC, ESC ^ ESC_XOR))}


def encode_frame(msg_type: int, seq: int, payload: bytes = b"", version: int = FRAME_VERSION) -> bytes:
    """One complete frame as sent on the wire. Raises ValueError for a payload over MAX_PAYLOAD bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload is {len(payload)} bytes; a frame carries at most {MAX_PAYLOAD}")
    if not (0 <= msg_type <= 0xFF and 0 <= seq <= 0xFFFF and 0 <= version <= 0xFF):
        raise ValueError("type and version must fit in a byte, seq in 16 bits")
    body = bytes((len(payload), version, msg_type, seq & 0xFF, seq >> 8)) + payload
    crc = crc16(body)
    body += bytes((crc & 0xFF, crc >> 8))
    out = bytearray((SOF,))
    for byte in body:
        stuffed = _STUFF.get(byte)
        if stuffed is None:
            out.append(byte)
        else:
            out += stuffed
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    seq: int
    payload: bytes
    version: int = FRAME_VERSION


class DecodeError(str, Enum):
    """Why a frame was dropped (the names match the C harness output)."""

    CRC = "crc"
    TRUNCATED = "truncated"
    OVERSIZED = "oversized"
    ESCAPE = "escape"
    VERSION = "version"


@dataclass(frozen=True, slots=True)
class FrameError:
    reason: DecodeError


class FrameDecoder:
    """Byte-at-a-time state machine, the same as vk_decoder_push. Feed it any chunks of received bytes;
    it yields `Frame`s and `FrameError`s and counts `garbage_bytes` (bytes skipped while hunting)."""

    def __init__(self) -> None:
        self.garbage_bytes = 0
        self._in_frame = False
        self._escaped = False
        self._buf = bytearray()

    @property
    def pending(self) -> bool:
        """True while part of a frame has arrived and the rest has not."""
        return self._in_frame and (bool(self._buf) or self._escaped)

    def reset(self) -> None:
        """Forget a partial frame (e.g. after the port was closed); the garbage count stays."""
        self._in_frame = False
        self._escaped = False
        self._buf.clear()

    def feed(self, data: bytes) -> Iterator[Frame | FrameError]:
        buf = self._buf
        for byte in data:
            if not self._in_frame:
                if byte == SOF:
                    self._in_frame = True
                    self._escaped = False
                    buf.clear()
                else:
                    self.garbage_bytes += 1
                continue
            if byte == SOF:
                truncated = bool(buf) or self._escaped
                self._escaped = False
                buf.clear()
                if truncated:
                    yield FrameError(DecodeError.TRUNCATED)
                continue
            if byte == ESC:
                if self._escaped:
                    self.reset()
                    yield FrameError(DecodeError.ESCAPE)
                else:
                    self._escaped = True
                continue
            if self._escaped:
                self._escaped = False
                byte ^= ESC_XOR
                if byte not in (SOF, ESC):
                    self.reset()
                    yield FrameError(DecodeError.ESCAPE)
                    continue
            buf.append(byte)
            if len(buf) == 1 and byte > MAX_PAYLOAD:
                self.reset()
                yield FrameError(DecodeError.OVERSIZED)
                continue
            body_len = HEADER_LEN + buf[0]
            if len(buf) < body_len + CRC_LEN:
                continue
            got_crc = buf[body_len] | (buf[body_len + 1] << 8)
            if crc16(bytes(buf[:body_len])) != got_crc:
                self.reset()
                yield FrameError(DecodeError.CRC)
                continue
            if buf[1] != FRAME_VERSION:
                self.reset()
                yield FrameError(DecodeError.VERSION)
                continue
            frame = Frame(type=buf[2], seq=buf[3] | (buf[4] << 8), payload=bytes(buf[HEADER_LEN:body_len]), version=buf[1])
            self.reset()
            yield frame
