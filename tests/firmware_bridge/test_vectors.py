"""The C reference implementation and the Python one agree on every shared vector (vectors.json),
including corrupt frames, and on random noisy streams."""

from __future__ import annotations

import random

import pytest

from vardkoll.firmware_bridge.framing import MAX_PAYLOAD, Frame, FrameDecoder, crc16, encode_frame
from vardkoll.firmware_bridge.messages import Ack, EventMsg, Hello, HelloAck, MalformedMessage, Nack, TimeSync

from .conftest import VECTORS


def python_decode(wire: bytes) -> list[str]:
    """Decode a stream in Python, written as the C harness writes it."""
    decoder = FrameDecoder()
    lines = []
    for item in decoder.feed(wire):
        if isinstance(item, Frame):
            lines.append(f"frame {item.version} {item.type} {item.seq} {item.payload.hex() or '-'}")
        else:
            lines.append(f"error {item.reason.value}")
    lines.append(f"end {decoder.garbage_bytes} {int(decoder.pending)}")
    return lines


def expected_decode(vector: dict) -> list[str]:
    lines = []
    for result in vector["results"]:
        if "frame" in result:
            frame = result["frame"]
            lines.append(f"frame 1 {frame['type']} {frame['seq']} {frame['payload'] or '-'}")
        else:
            lines.append(f"error {result['error']}")
    lines.append(f"end {vector['garbage']} {int(vector['pending'])}")
    return lines


def split_decode_output(lines: list[str]) -> list[list[str]]:
    groups, current = [], []
    for line in lines:
        current.append(line)
        if line.startswith("end "):
            groups.append(current)
            current = []
    return groups


def hex_or_dash(data: str) -> str:
    return data or "-"


# -- Python against the vectors -------------------------------------------------------------------


def test_crc_is_ccitt_false_with_check_value_29b1():
    assert crc16(b"123456789") == 0x29B1
    for vector in VECTORS["crc"]:
        assert f"{crc16(bytes.fromhex(vector['data'])):04x}" == vector["crc"]


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=lambda v: v["name"])
def test_python_encodes_each_frame_vector_and_decodes_it_back(vector):
    payload = bytes.fromhex(vector["payload"])
    wire = encode_frame(vector["type"], vector["seq"], payload)
    assert wire.hex() == vector["wire"]
    assert wire.count(0x7E) == 1, "the start byte never occurs inside a frame"
    assert list(FrameDecoder().feed(wire)) == [Frame(vector["type"], vector["seq"], payload)]


@pytest.mark.parametrize("vector", VECTORS["streams"], ids=lambda v: v["name"])
def test_python_decodes_each_stream_vector(vector):
    assert python_decode(bytes.fromhex(vector["wire"])) == expected_decode(vector)


@pytest.mark.parametrize("vector", VECTORS["streams"], ids=lambda v: v["name"])
def test_python_decoder_result_does_not_depend_on_chunking(vector):
    wire = bytes.fromhex(vector["wire"])
    decoder = FrameDecoder()
    items = [item for index in range(len(wire)) for item in decoder.feed(wire[index : index + 1])]
    assert items == list(FrameDecoder().feed(wire))


def test_python_refuses_to_encode_an_oversized_payload():
    for vector in VECTORS["encode_errors"]:
        with pytest.raises(ValueError, match="at most 128"):
            encode_frame(vector["type"], vector["seq"], bytes.fromhex(vector["payload"]))


def test_python_message_codecs_match_vectors():
    by_name = {vector["name"]: vector for vector in VECTORS["messages"]}
    hello = Hello.decode(bytes.fromhex(by_name["hello"]["payload"]))
    assert (hello.device_id, hello.kind, hello.firmware, hello.store_id) == ("disp-entre-1", 1, (1, 4, 2), 0x7E7D0102)
    assert hello.encode().hex() == by_name["hello"]["payload"]
    event = EventMsg.decode(bytes.fromhex(by_name["event"]["payload"]))
    assert event == EventMsg(42, 1, 1, 1_772_434_800_000, 42)
    for vector in VECTORS["parse"]:
        cls = {2: HelloAck, 4: Ack, 5: TimeSync, 6: Nack}[vector["type"]]
        payload = bytes.fromhex(vector["payload"])
        if vector["result"] is None:
            with pytest.raises(MalformedMessage):
                cls.decode(payload)
        else:
            message = cls.decode(payload)
            assert message.encode() == payload


# -- C against the same vectors -------------------------------------------------------------------


def test_c_crc_matches_vectors(run_c):
    assert run_c([f"crc {hex_or_dash(v['data'])}" for v in VECTORS["crc"]]) == [f"crc {v['crc']}" for v in VECTORS["crc"]]


def test_c_encoder_matches_every_frame_vector(run_c):
    commands = [f"encode {v['type']} {v['seq']} {hex_or_dash(v['payload'])}" for v in VECTORS["frames"]]
    assert run_c(commands) == [f"wire {v['wire']}" for v in VECTORS["frames"]]


def test_c_refuses_to_encode_an_oversized_payload(run_c):
    commands = [f"encode {v['type']} {v['seq']} {v['payload']}" for v in VECTORS["encode_errors"]]
    assert run_c(commands) == ["wire error"] * len(commands)


def test_c_decoder_matches_every_stream_vector(run_c):
    outputs = split_decode_output(run_c([f"decode {hex_or_dash(v['wire'])}" for v in VECTORS["streams"]]))
    assert len(outputs) == len(VECTORS["streams"])
    for vector, output in zip(VECTORS["streams"], outputs):
        assert output == expected_decode(vector), vector["name"]


def test_c_decodes_every_frame_vector_back(run_c):
    outputs = split_decode_output(run_c([f"decode {v['wire']}" for v in VECTORS["frames"]]))
    for vector, output in zip(VECTORS["frames"], outputs):
        assert output == [f"frame 1 {vector['type']} {vector['seq']} {hex_or_dash(vector['payload'])}", "end 0 0"]


def test_c_message_builders_match_python(run_c):
    commands = [" ".join(str(part) for part in v["build"]) for v in VECTORS["messages"]]
    expected = [f"payload {v['payload'] if v['payload'] is not None else 'error'}" for v in VECTORS["messages"]]
    assert run_c(commands) == expected


def test_c_message_parsers_match_vectors(run_c):
    commands = [f"parse {v['type']} {hex_or_dash(v['payload'])}" for v in VECTORS["parse"]]
    expected = [" ".join(str(part) for part in v["result"]) if v["result"] else "invalid" for v in VECTORS["parse"]]
    assert run_c(commands) == expected


# -- C and Python on streams nobody wrote by hand -------------------------------------------------


def noisy_stream(rng: random.Random) -> bytes:
    """Frames with random content, some corrupted (bit flips, cuts, stray bytes), some noise."""
    out = bytearray()
    for _ in range(rng.randint(1, 12)):
        payload = bytes(rng.choice((0x7E, 0x7D, rng.randrange(256))) for _ in range(rng.randint(0, MAX_PAYLOAD)))
        wire = bytearray(encode_frame(rng.randrange(256), rng.randrange(65536), payload))
        fault = rng.random()
        if fault < 0.15 and len(wire) > 2:
            wire[rng.randrange(1, len(wire))] ^= 1 << rng.randrange(8)
        elif fault < 0.3:
            wire = wire[: rng.randrange(1, len(wire) + 1)]
        elif fault < 0.4:
            wire[rng.randrange(1, len(wire)) :] = b""
            wire += bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        elif fault < 0.5:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        out += wire
    return bytes(out)


def test_c_and_python_decode_random_noisy_streams_alike(run_c):
    rng = random.Random(20261123)
    streams = [noisy_stream(rng) for _ in range(300)]
    outputs = split_decode_output(run_c([f"decode {hex_or_dash(s.hex())}" for s in streams]))
    assert len(outputs) == len(streams)
    for stream, output in zip(streams, outputs):
        assert output == python_decode(stream)


def test_frames_encoded_by_c_decode_in_python_and_back(run_c):
    rng = random.Random(7)
    cases = [(rng.randrange(256), rng.randrange(65536), bytes(rng.randrange(256) for _ in range(rng.randint(0, MAX_PAYLOAD)))) for _ in range(200)]
    wires = run_c([f"encode {t} {s} {hex_or_dash(p.hex())}" for t, s, p in cases])
    for (msg_type, seq, payload), line in zip(cases, wires):
        wire = bytes.fromhex(line.removeprefix("wire "))
        assert wire == encode_frame(msg_type, seq, payload)
        assert list(FrameDecoder().feed(wire)) == [Frame(msg_type, seq, payload)]
