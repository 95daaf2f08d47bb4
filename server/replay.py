"""Re-compute every figure from an archive of events (SPEC 4, `vardkoll replay`).

Reads JSON lines (plain or gzip, a path or `-` for stdin). A bad line is reported with its number and a
reason and never stops the replay.
"""

from __future__ import annotations

import gzip
import io
import sys
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from vardkoll.protocol import EventRejected, parse_event_line

from .metrics import DEFINITION_VERSIONS, Applied, MetricEngine, Period, UnitConfig

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


def replay_lines(
    lines: Iterable[bytes],
    period_from: date | None = None,
    period_to: date | None = None,
    as_of: datetime | None = None,
    config_of: Callable[[str], UnitConfig] | None = None,
) -> dict[str, Any]:
    engine = MetricEngine(config_of)
    rejected: list[dict[str, Any]] = []
    duplicates = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_event_line(line)
        except EventRejected as exc:
            rejected.append({"line": number, "error": exc.reason})
            continue
        outcome = engine.apply(event)
        if outcome is Applied.DUPLICATE:
            duplicates += 1
        elif outcome is Applied.CONFLICT:
            rejected.append({"line": number, "error": f"event id '{event.id}' was already used by a different event of this unit"})
    return {
        "results": _results(engine, period_from, period_to, as_of),
        "rejected": rejected,
        "duplicates": duplicates,
        "definition_versions": dict(DEFINITION_VERSIONS),
    }


def _results(engine: MetricEngine, start: date | None, end: date | None, as_of: datetime | None) -> list[dict[str, Any]]:
    span = engine.span()
    if span is None:
        return []
    return engine.figures(Period(start or span.start, end or span.end), as_of)


def replay_path(
    path: str | Path,
    period_from: date | None = None,
    period_to: date | None = None,
    as_of: datetime | None = None,
    config_of: Callable[[str], UnitConfig] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Replay a file. `on_bytes`, when given, is told how many bytes each line had (for progress)."""
    with open_events(path) as stream:
        lines: Iterable[bytes] = stream
        if on_bytes is not None:
            lines = _reporting(stream, on_bytes)
        return replay_lines(lines, period_from, period_to, as_of, config_of)


def _reporting(lines: Iterable[bytes], on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    pending = 0
    for line in lines:
        pending += len(line)
        if pending >= 1 << 20:
            on_bytes(pending)
            pending = 0
        yield line
    on_bytes(pending)
