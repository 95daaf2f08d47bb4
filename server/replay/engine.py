"""Re-compute every figure from an archive of events (SPEC 4, `vardkoll replay`).

Reads JSON lines (plain or gzip, a path or `-` for stdin). A bad line is reported with its number and a
reason and never stops the replay.
"""

from __future__ import annotations

import gc
import gzip
import io
import sys
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..metrics import DEFINITION_VERSIONS, Applied, MetricEngine, Period, UnitConfig
from .blocks import ParsedBlock, default_workers, parse_block, read_blocks
from .shards import UnitWorkers, conflict_reason

GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def open_events(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary stream of the file's lines; gzip is recognised by its magic bytes, not its name."""
    raw: IO[bytes] = sys.stdin.buffer if str(path) == "-" else open(path, "rb")
    try:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        stream: IO[bytes] = gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == GZIP_MAGIC else buffered
        yield stream
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


@contextmanager
def paused_garbage_collector() -> Iterator[None]:
    """Replay allocates millions of small objects and builds no reference cycles; the cyclic collector
    would otherwise re-scan the growing state again and again (about a fifth of the run time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def replay_stream(
    stream: IO[bytes],
    period_from: date | None = None,
    period_to: date | None = None,
    as_of: datetime | None = None,
    config_of: Callable[[str], UnitConfig] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Replay a binary stream of JSON lines. `on_bytes`, when given, is told how many bytes were read
    (for progress). A stream of more than one block (`blocks.BLOCK_BYTES`) is replayed by
    `workers` processes that each own some of the units (`shards`; default: one per CPU);
    `workers=0` replays it in this process. Either way the document is the same."""
    workers = default_workers() if workers is None else workers
    rejected: list[tuple[int, str]] = []
    duplicates = 0
    with paused_garbage_collector():
        blocks = read_blocks(stream, on_bytes)
        first, second = next(blocks, None), next(blocks, None)
        if workers > 0 and second is not None:
            with UnitWorkers(workers, config_of) as pool:
                for block, first_line in _chain(first, second, blocks):
                    pool.route(block, first_line)
                period = _period(pool.span(), period_from, period_to)
                results = pool.figures(period, as_of)
                rejected, duplicates = pool.rejected, pool.duplicates
        else:  # a small file is parsed faster than a process starts
            engine = MetricEngine(config_of)
            for raw in _chain(first, second, blocks):
                duplicates += _apply_block(engine, raw, rejected)
            period = _period(engine.span(), period_from, period_to)
            results = engine.figures(period, as_of) if period is not None else []
        rejected.sort()
    return {
        "results": results,
        "rejected": [{"line": line, "error": error} for line, error in rejected],
        "duplicates": duplicates,
        "definition_versions": dict(DEFINITION_VERSIONS),
    }


def _chain(first: tuple[bytes, int] | None, second: tuple[bytes, int] | None, rest: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    for block in (first, second):
        if block is not None:
            yield block
    yield from rest


def _apply_block(engine: MetricEngine, raw: tuple[bytes, int], rejected: list[tuple[int, str]]) -> int:
    block = parse_block(*raw)
    rejected.extend(block.rejected)
    return _apply(engine, block, rejected)


def _apply(engine: MetricEngine, block: ParsedBlock, rejected: list[tuple[int, str]]) -> int:
    """Apply a block's events; return how many repeated an earlier event."""
    duplicates = 0
    for number, event in zip(block.event_lines, block.events):
        outcome = engine.apply(event)
        if outcome is Applied.DUPLICATE:
            duplicates += 1
        elif outcome is Applied.CONFLICT:
            rejected.append((number, conflict_reason(event.id)))
    return duplicates


class ReplayPeriodError(ValueError):
    """The period asked for cannot be formed (e.g. --from after the last event, without --to)."""


def _period(span: Period | None, start: date | None, end: date | None) -> Period | None:
    """The period asked for, completed from the events' dates; None when there are no events."""
    if span is None:
        return None
    start, end = start or span.start, end or span.end
    if end < start:
        raise ReplayPeriodError(
            f"the period would end ({end}) before it starts ({start}): the events cover {span.start} to {span.end}; give both --from and --to"
        )
    return Period(start, end)


def replay_path(
    path: str | Path,
    period_from: date | None = None,
    period_to: date | None = None,
    as_of: datetime | None = None,
    config_of: Callable[[str], UnitConfig] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Replay a file (plain or gzip), or stdin for `-`."""
    with open_events(path) as stream:
        return replay_stream(stream, period_from, period_to, as_of, config_of, on_bytes, workers)
