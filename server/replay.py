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

from .metrics import DEFINITION_VERSIONS, Applied, MetricEngine, Period, UnitConfig
from .replay_blocks import ParsedBlock, default_workers, parsed_blocks

GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def open_events(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary stream of the file's lines; gzip is recognised by its magic bytes, not its name."""
    raw: IO[bytes] = sys.stdin.buffer if str(path) == "-" else open(path, "rb")
    try:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
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
    (for progress); `workers` parse in other processes (default: the spare CPUs)."""
    engine = MetricEngine(config_of)
    rejected: list[tuple[int, str]] = []
    duplicates = 0
    with paused_garbage_collector():
        for block in parsed_blocks(stream, default_workers() if workers is None else workers, on_bytes):
            rejected.extend(block.rejected)
            duplicates += _apply(engine, block, rejected)
    rejected.sort()
    return {
        "results": _results(engine, period_from, period_to, as_of),
        "rejected": [{"line": line, "error": error} for line, error in rejected],
        "duplicates": duplicates,
        "definition_versions": dict(DEFINITION_VERSIONS),
    }


def _apply(engine: MetricEngine, block: ParsedBlock, rejected: list[tuple[int, str]]) -> int:
    """Apply a block's events; return how many repeated an earlier event."""
    duplicates = 0
    for number, event in zip(block.event_lines, block.events):
        outcome = engine.apply(event)
        if outcome is Applied.DUPLICATE:
            duplicates += 1
        elif outcome is Applied.CONFLICT:
            rejected.append((number, f"event id '{event.id}' was already used by a different event of this unit"))
    return duplicates


class ReplayPeriodError(ValueError):
    """The period asked for cannot be formed (e.g. --from after the last event, without --to)."""


def _results(engine: MetricEngine, start: date | None, end: date | None, as_of: datetime | None) -> list[dict[str, Any]]:
    span = engine.span()
    if span is None:
        return []
    start, end = start or span.start, end or span.end
    if end < start:
        raise ReplayPeriodError(f"the period would end ({end}) before it starts ({start}): the events cover {span.start} to {span.end}; give both --from and --to")
    return engine.figures(Period(start, end), as_of)


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
