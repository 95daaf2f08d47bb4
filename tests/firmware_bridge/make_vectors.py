"""Regenerate vectors.json: `python tests/firmware_bridge/make_vectors.py`.

The expected results are written by the Python implementation and then held fixed: the tests check the
C implementation against them and the Python one against them again, so a change to either side that
alters the wire shows up as a diff in this file. Anchors that do not come from the code: the CRC check
value 0x29B1 and the hand-worked frame `event_minimal` in docs/firmware-protocol.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from vardkoll.firmware_bridge.framing import MAX_PAYLOAD, Frame, FrameDecoder, crc16, encode_frame
from vardkoll.firmware_bridge.messages import Ack, EventMsg, Hello, HelloAck, MsgType, Nack, TimeSync

OUT = Path(__file__).with_name("vectors.json")
UNIT = "SE2321000016-15SF"


def frame(name: str, msg_type: int, seq: int, payload: bytes) -> dict:
    return {"name": name, "type": msg_type, "seq": seq, "payload": payload.hex(), "wire": encode_frame(msg_type, seq, payload).hex()}


def stream(name: str, wire: bytes) -> dict:
    decoder = FrameDecoder()
    results = []
    for item in decoder.feed(wire):
        if isinstance(item, Frame):
            results.append({"frame": {"type": item.type, "seq": item.seq, "payload": item.payload.hex()}})
        else:
            results.append({"error": item.reason.value})
    return {"name": name, "wire": wire.hex(), "results": results, "garbage": decoder.garbage_bytes, "pending": decoder.pending}


def main() -> None:
    hello = Hello(device_id="disp-entre-1", unit=UNIT, kind=1, firmware=(1, 4, 2), store_id=0x7E7D0102)
    event = EventMsg(local_seq=42, input=1, flags=1, device_time_ms=1_772_434_800_000, ref=42)
    escaped_event = EventMsg(local_seq=0x7E7D7E7D, input=0x7E, flags=1, device_time_ms=0x7D7E7D7E7D7E7D7E, ref=0x7D7D7E7E)
    frames = [
        frame("empty_payload", MsgType.TIME, 0, b""),
        frame("event_minimal", MsgType.EVENT, 1, EventMsg(1, 1, 1, 1_772_434_800_000, 1).encode()),
        frame("hello", MsgType.HELLO, 0, hello.encode()),
        frame("hello_ack", MsgType.HELLO_ACK, 0, HelloAck(True, 0, 1_772_434_800_123).encode()),
        frame("ack_many", MsgType.ACK, 513, Ack(tuple(range(1, 17))).encode()),
        frame("nack", MsgType.NACK, 65535, Nack(3, MsgType.HELLO, 7, 0).encode()),
        frame("escaped_bytes_everywhere", MsgType.EVENT, 0x7E7D, escaped_event.encode()),
        frame("length_126_is_escaped", 0x7E, 0x7D7E, bytes(range(126))),
        frame("max_payload_all_sof", 0x7D, 0xFFFF, b"\x7e" * MAX_PAYLOAD),
        frame("max_payload_all_esc", MsgType.EVENT, 2, b"\x7d" * MAX_PAYLOAD),
    ]
    # Find a payload whose CRC has a 0x7E / 0x7D byte, so stuffing of the CRC itself is covered.
    for n in range(1000):
        wire = encode_frame(MsgType.EVENT, n, b"crc")
        if b"\x7d" in wire[-4:]:
            frames.append(frame("crc_byte_escaped", MsgType.EVENT, n, b"crc"))
            break

    good = bytes.fromhex(frames[1]["wire"])
    good2 = bytes.fromhex(frames[5]["wire"])
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01
    flipped_payload = bytearray(good)
    flipped_payload[8] ^= 0x10
    oversized_header = bytes((0x7E, MAX_PAYLOAD + 1, 1, 3, 0, 0)) + b"\x11" * 40
    wrong_version = bytearray((0, 2, 5, 0, 0))
    crc = crc16(bytes(wrong_version))
    wrong_version_wire = b"\x7e" + bytes(wrong_version) + bytes((crc & 0xFF, crc >> 8))
    streams = [
        stream("one_frame", good),
        stream("two_frames_back_to_back", good + good2),
        stream("idle_start_bytes_are_ignored", b"\x7e\x7e\x7e" + good),
        stream("garbage_before_between_after", b"noise\x00\xff" + good + b"\x01\x02\x03" + good2 + b"tail"),
        stream("bad_crc", bytes(bad_crc) + good2),
        stream("flipped_payload_bit", bytes(flipped_payload) + good2),
        stream("truncated_then_next_frame", good[:9] + good2),
        stream("truncated_at_escape", b"\x7e\x02\x01\x03\x00\x00\x7d" + good2),
        stream("truncated_at_end_of_input", good + good2[:6]),
        stream("oversized_length", oversized_header + good2),
        stream("length_255", b"\x7e\xff" + b"\x00" * 300 + good),
        stream("invalid_escape", b"\x7e\x02\x01\x03\x00\x00\x7d\x41\x42\x43" + good2),
        stream("double_escape", b"\x7e\x02\x7d\x7d\x01" + good2),
        stream("unsupported_frame_version", wrong_version_wire + good2),
        stream("escaped_bytes_everywhere", bytes.fromhex(frames[6]["wire"])),
        stream("max_payload", bytes.fromhex(frames[8]["wire"]) + bytes.fromhex(frames[9]["wire"])),
        stream("only_garbage", bytes(range(0, 0x7E)) + bytes(range(0x7F, 0x100))),
        stream("empty", b""),
        stream("crc_ok_frames_survive_mixed_faults", b"\xaa" + good[:5] + bytes(bad_crc) + b"\x7e\xff" + good + b"\x7d" + good2),
    ]
    crcs = [
        {"data": b"123456789".hex(), "crc": "29b1"},
        {"data": "", "crc": "ffff"},
        {"data": "00", "crc": f"{crc16(bytes(1)):04x}"},
    ]
    messages = [
        {"name": "hello", "build": ["hello", 1, 1, 4, 2, 0x7E7D0102, "disp-entre-1", UNIT], "payload": hello.encode().hex()},
        {
            "name": "hello_panel",
            "build": ["hello", 2, 0, 9, 0, 0, "panel.A_2", "SE232100001612-X"],
            "payload": Hello("panel.A_2", "SE232100001612-X", 2, (0, 9, 0), 0).encode().hex(),
        },
        {"name": "hello_device_id_too_long", "build": ["hello", 1, 1, 0, 0, 0, "d" * 33, UNIT], "payload": None},
        {"name": "hello_device_id_bad_char", "build": ["hello", 1, 1, 0, 0, 0, "disp/1", UNIT], "payload": None},
        {"name": "event", "build": ["event", 42, 1, 1, 1_772_434_800_000, 42], "payload": event.encode().hex()},
        {
            "name": "event_max_values",
            "build": ["event", 2**32 - 1, 255, 255, 2**64 - 1, 2**32 - 1],
            "payload": EventMsg(2**32 - 1, 255, 255, 2**64 - 1, 2**32 - 1).encode().hex(),
        },
        {"name": "nack", "build": ["nack", 11, 9, 65535, 123456], "payload": Nack(11, 9, 65535, 123456).encode().hex()},
    ]
    parses = [
        {
            "name": "hello_ack_accepted",
            "type": 2,
            "payload": HelloAck(True, 0, 1_772_434_800_123).encode().hex(),
            "result": ["hello_ack", 1, 0, 1_772_434_800_123],
        },
        {"name": "hello_ack_refused", "type": 2, "payload": HelloAck(False, 3, 5).encode().hex(), "result": ["hello_ack", 0, 3, 5]},
        {"name": "hello_ack_short", "type": 2, "payload": "0100", "result": None},
        {"name": "hello_ack_accepted_2", "type": 2, "payload": "02" + "00" * 9, "result": None},
        {"name": "ack_one", "type": 4, "payload": Ack((7,)).encode().hex(), "result": ["ack", 7]},
        {"name": "ack_sixteen", "type": 4, "payload": Ack(tuple(range(100, 116))).encode().hex(), "result": ["ack", *range(100, 116)]},
        {"name": "ack_zero_count", "type": 4, "payload": "00", "result": None},
        {"name": "ack_seventeen", "type": 4, "payload": "11" + "01000000" * 17, "result": None},
        {"name": "ack_count_mismatch", "type": 4, "payload": "02" + "01000000", "result": None},
        {"name": "time", "type": 5, "payload": TimeSync(2**64 - 2).encode().hex(), "result": ["time", 2**64 - 2]},
        {"name": "time_short", "type": 5, "payload": "00" * 7, "result": None},
        {"name": "nack", "type": 6, "payload": Nack(6, 3, 513, 99).encode().hex(), "result": ["nack", 6, 3, 513, 99]},
        {"name": "nack_long", "type": 6, "payload": "00" * 9, "result": None},
        {"name": "empty_ack", "type": 4, "payload": "", "result": None},
    ]
    encode_errors = [{"name": "payload_over_max", "type": 3, "seq": 0, "payload": (b"\x00" * (MAX_PAYLOAD + 1)).hex()}]
    document = {
        "about": "Shared test vectors for device protocol v1 (docs/firmware-protocol.md). Regenerate with make_vectors.py.",
        "crc": crcs,
        "frames": frames,
        "streams": streams,
        "encode_errors": encode_errors,
        "messages": messages,
        "parse": parses,
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
