"""Parse an event archive block by block, in worker processes when the file is big enough.

Parsing and validating a line costs about as much as applying it to the metric state, and only the
applying must happen in one place. So the main process reads blocks of whole lines, worker processes
parse them, and hand back the valid events (packed with msgpack, which is cheap to unpack) and the
rejected lines, in file order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import IO, Callable, Iterator

import msgspec

from vardkoll.protocol import EventRejected, parse_event_line
from vardkoll.protocol.events import Event

BLOCK_BYTES = 4 << 20


class ParsedBlock(msgspec.Struct, array_like=True):
    event_lines: list[int]  # the line number of each event
    events: list[Event]  # type: ignore[valid-type]
    rejected: list[tuple[int, str]]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ParsedBlock)


def parse_block(block: bytes, first_line: int) -> ParsedBlock:
    parsed = ParsedBlock([], [], [])
    for number, line in enumerate(block.split(b"\n"), start=first_line):
        if not line.strip():
            continue
        try:
            parsed.events.append(parse_event_line(line))
            parsed.event_lines.append(number)
        except EventRejected as exc:
            parsed.rejected.append((number, exc.reason))
    return parsed


def _parse_block_packed(block: bytes, first_line: int) -> bytes:
    return _ENCODER.encode(parse_block(block, first_line))


def read_blocks(
    stream: IO[bytes], on_bytes: Callable[[int], None] | None = None, block_bytes: int | None = None
) -> Iterator[tuple[bytes, int]]:
    """(block of whole lines without its last newline, number of its first line)."""
    block_bytes = block_bytes or BLOCK_BYTES
    line_number = 1
    carry = b""
    while True:
        data = stream.read(block_bytes)
        if on_bytes is not None and data:
            on_bytes(len(data))
        if not data:
            if carry:
                yield carry, line_number
            return
        data = carry + data
        cut = data.rfind(b"\n")
        if cut == -1:
            carry = data
            continue
        block, carry = data[:cut], data[cut + 1 :]
        yield block, line_number
        line_number += block.count(b"\n") + 1


def default_workers() -> int:
    """Processes that parse beside the one that applies: all spare CPUs, at most two."""
    return max(0, min(2, len(os.sched_getaffinity(0)) - 1))


def parsed_blocks(
    stream: IO[bytes], workers: int, on_bytes: Callable[[int], None] | None = None, block_bytes: int | None = None
) -> Iterator[ParsedBlock]:
    blocks = read_blocks(stream, on_bytes, block_bytes)
    first = next(blocks, None)
    if first is None:
        return
    second = next(blocks, None)
    if workers <= 0 or second is None:  # a small file is parsed faster than a process starts
        yield parse_block(*first)
        if second is not None:
            yield parse_block(*second)
        for block in blocks:
            yield parse_block(*block)
        return
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        in_flight: deque[Future[bytes]] = deque()
        for block in _chain(first, second, blocks):
            in_flight.append(pool.submit(_parse_block_packed, *block))
            if len(in_flight) > 2 * workers:
                yield _DECODER.decode(in_flight.popleft().result())
        while in_flight:
            yield _DECODER.decode(in_flight.popleft().result())


def _chain(first: tuple[bytes, int], second: tuple[bytes, int], rest: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    yield first
    yield second
    yield from rest
