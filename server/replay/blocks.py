"""Read an event archive in blocks of whole lines and parse them.

A small file (or `workers=0`) is parsed and applied in the main process. A bigger one goes to worker
processes that each own some of the units (`shards`).
"""

from __future__ import annotations

import os
from typing import IO, Callable, Iterable, Iterator

import msgspec

from vardkoll.protocol import MAX_EVENT_BYTES, EventRejected, parse_event_line
from vardkoll.protocol.events import EVENT_DECODER, Event
from vardkoll.protocol.personal_number import raw_may_contain_personal_number

BLOCK_BYTES = 4 << 20


class ParsedBlock(msgspec.Struct, array_like=True):
    event_lines: list[int]  # the line number of each event
    events: list[Event]
    rejected: list[tuple[int, str]]


def parse_block(block: bytes, first_line: int) -> ParsedBlock:
    """Every line of a block (lines joined by "\\n", the first numbered `first_line`) parsed."""
    return parse_lines(block, range(first_line, first_line + block.count(b"\n") + 1))


def parse_lines(data: bytes, numbers: Iterable[int]) -> ParsedBlock:
    """Lines joined by "\\n", numbered by `numbers`, each as `parse_event_line` takes it; blank lines skipped.

    The personal-number pre-check runs once over all the lines (then, if it finds something, over each
    batch of lines). "\\n" is neither a digit nor a separator, so a digit run never spans two lines and
    the check finds in the whole whatever it finds in any one line (it may find more: it looks back over
    whitespace, newlines included, for the character before a number). Where it finds nothing, no line
    can hold a personal number, and the lines go straight to the schema decoder, a batch in one call; a
    batch where a line fails there, or is too big, is decoded again line by line, and the lines that
    fail go through `parse_event_line` after all, for their exact reason."""
    parsed = ParsedBlock([], [], [])
    lines = data.split(b"\n")
    numbers = list(numbers)
    clean = not raw_may_contain_personal_number(data)
    decode = EVENT_DECODER.decode
    for start in range(0, len(lines), _BATCH):
        batch, batch_numbers = lines[start : start + _BATCH], numbers[start : start + _BATCH]
        if clean or not raw_may_contain_personal_number(b"\n".join(batch)):
            try:
                if max(map(len, batch)) > MAX_EVENT_BYTES:
                    raise ValueError
                events = list(map(decode, batch))
            except Exception:  # noqa: BLE001 - each line again below: the reason of the one that fails
                part = _parse_one_by_one(batch, batch_numbers, decode)
            else:
                parsed.event_lines += batch_numbers
                parsed.events += events
                continue
        else:
            part = _parse_one_by_one(batch, batch_numbers, parse_event_line)
        parsed.event_lines += part.event_lines
        parsed.events += part.events
        parsed.rejected += part.rejected
    return parsed


_BATCH = 512  # lines decoded in one call; a batch with a bad line is parsed again line by line


def _parse_one_by_one(lines: list[bytes], numbers: Iterable[int], decode: Callable[[bytes], Event]) -> ParsedBlock:
    """Each line through `decode` (when the block holds no personal number), else or on failure through
    `parse_event_line`; blank lines skipped."""
    parsed = ParsedBlock([], [], [])
    event_lines, events, rejected = parsed.event_lines, parsed.events, parsed.rejected
    for number, line in zip(numbers, lines):
        if decode is not parse_event_line and len(line) <= MAX_EVENT_BYTES:
            try:
                events.append(decode(line))
                event_lines.append(number)
                continue
            except Exception:  # noqa: BLE001 - parse_event_line below gives the reason
                pass
        if not line.strip():
            continue
        try:
            events.append(parse_event_line(line))
            event_lines.append(number)
        except EventRejected as exc:
            rejected.append((number, exc.reason))
    return parsed


def read_blocks(stream: IO[bytes], on_bytes: Callable[[int], None] | None = None, block_bytes: int | None = None) -> Iterator[tuple[bytes, int]]:
    """(block of whole lines without its last newline, number of its first line): about `block_bytes`
    read at once, then the rest of the last line."""
    block_bytes = block_bytes or BLOCK_BYTES
    line_number = 1
    while data := stream.read(block_bytes):
        if data[-1] != 10:
            data += stream.readline()
        if on_bytes is not None:
            on_bytes(len(data))
        block = data[:-1] if data[-1] == 10 else data
        yield block, line_number
        line_number += block.count(b"\n") + 1


def default_workers() -> int:
    """Worker processes for a big file: one per CPU, at most four; none on a single CPU, where they
    could only add the cost of handing lines over. The main process only routes lines, a small part of
    what the workers spend on them, so it needs no CPU of its own."""
    cpus = len(os.sched_getaffinity(0))
    return min(4, cpus) if cpus > 1 else 0
