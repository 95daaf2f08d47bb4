"""Asterisk `queue_log`: tail the file through rotation and restarts (domain research 3.2).

Asterisk's app_queue writes one line per queue event to `queue_log` in its log directory:

    epoch|callid|queue|agent|EVENT|data1|data2|...

`epoch` is Unix time (UTC seconds); `callid` is the channel's uniqueid (e.g. `1772434692.1041`). The call
events map to protocol events like this:

| queue_log event | event |
|---|---|
| ENTERQUEUE | `call.offered` (with `queue`) |
| CONNECT | `call.answered` |
| ABANDON, EXITWITHTIMEOUT, EXITEMPTY | `call.abandoned` (app_queue counts timeouts and leave-empty exits as abandoned too) |
| EXITWITHKEY | `call.abandoned` by default; `call.callback_booked` for the keys in `callback_keys`, or for every key with `exit_with_key = "callback_booked"` (where the dialplan sends a caller who pressed a key to a callback system) |
| COMPLETEAGENT, COMPLETECALLER, TRANSFER, ... | nothing (the call was answered already) |
| member and system events | nothing |

Asterisk writes no line for a caller refused by a full or closed queue (join_queue fails and only sets
QUEUESTATUS), so those come from a second source, `refused_log`, a file the dialplan appends to:

    epoch|callid|queue|STATUS          e.g. 1772434692|1772434692.1050|rådgivning|FULL

with STATUS one of the keys of `refused_statuses` (default FULL → queue_full; CLOSED, JOINEMPTY,
JOINUNAVAIL → closed). The same statuses written into queue_log itself as custom events with
`QueueLog(queue,${UNIQUEID},NONE,FULL)` are understood as well.

The caller id that ENTERQUEUE carries in its data fields is never read: only the timestamp, call id,
queue name and event name of a line are looked at (and the key of EXITWITHKEY). The call id is a
reference and leaves the device only as a pseudonym.

Tailing: the position (inode, byte offset, line number and a fingerprint of the file's first bytes) is a
connector checkpoint stored in the outbox together with the events read up to it, so a restart resumes
exactly there: no line is read twice, none skipped. A new inode means the file was rotated: the rest of
the old file is read first when it can still be found beside it (`queue_log.1`, `queue_log-20260302`: any
`queue_log*` with the old inode), then every file rotated after it, oldest first (more than one rotation
since the last read: a collector that was stopped for a while, or rotations faster than the polls), then
the new file from its start. Compressed generations (`.gz` and the like) are never read. A file shorter than the position, or
whose first bytes changed, was truncated (copytruncate): it is read again from its start. Only complete
lines are read; a line still being written waits for its newline.

A bad line (too few fields, a timestamp that is not a Unix time, no call id, not UTF-8, too long) is
counted and reported as `FILE: line N: rule`, never with its values, and the rest is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo

from msgspec import Meta, field, structs

from ..outbox import Checkpoint
from .base import Connector, ConnectorConfig, SourceBatch, SourceEvent

COMPRESSED = frozenset({".gz", ".bz2", ".xz", ".zst", ".lz4", ".z"})  # logrotate's compressed generations
HEAD_BYTES = 64  # the fingerprint of a file's start that tells a truncated-and-regrown file from the same one
ABANDONING = frozenset({"ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY"})
Rejection = Literal["queue_full", "closed"]


class AsteriskQueueLogConfig(ConnectorConfig):
    time_zone_keys: ClassVar[tuple[str, ...]] = ("timezone",)

    path: Path = Path("/var/log/asterisk/queue_log")
    refused_log: Path | None = None  # the dialplan's log of refused callers: epoch|callid|queue|STATUS
    queues: list[str] | None = None  # only these queues (by name); all when unset
    exit_with_key: Literal["abandoned", "callback_booked"] = "abandoned"
    callback_keys: list[str] = []  # EXITWITHKEY keys that mean "call me back" (→ call.callback_booked)
    refused_statuses: dict[str, Rejection] = field(
        default_factory=lambda: {"FULL": "queue_full", "CLOSED": "closed", "JOINEMPTY": "closed", "JOINUNAVAIL": "closed"}
    )  # keys are compared in upper case, trimmed
    timezone: str = "Europe/Stockholm"  # `at` is written with this zone's offset (the instant is the epoch's)
    start_at: Literal["beginning", "end"] = "beginning"  # where to start a file never read before
    rotated_glob: str | None = None  # where a rotated file may be found; default: `<name>*` beside the file
    max_bytes_per_batch: Annotated[int, Meta(ge=1024)] = 1024 * 1024
    max_line_bytes: Annotated[int, Meta(ge=256)] = 8192

    def check(self) -> None:
        structs.force_setattr(self, "refused_statuses", {key.strip().upper(): value for key, value in self.refused_statuses.items()})


class BadLine(ValueError):
    pass


@dataclass(frozen=True)
class Position:
    """Where reading a file got to; stored as JSON in the connector's checkpoint."""

    inode: int
    device: int
    offset: int = 0  # bytes read (always just after a newline, or inside an over-long line being skipped)
    line: int = 0  # lines read, for line numbers in reports
    head: str = ""  # sha256 (hex, 16) of the first min(offset, HEAD_BYTES) bytes
    skip: bool = False  # inside an over-long line: drop up to the next newline

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def load(cls, text: str | None) -> "Position | None":
        if not text:
            return None
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None  # unreadable checkpoint: treated as a file never read


def _head(descriptor: int, offset: int) -> str:
    size = min(offset, HEAD_BYTES)
    return hashlib.sha256(os.pread(descriptor, size, 0)).hexdigest()[:16] if size else ""


LineHandler = Callable[[int, str], list[SourceEvent]]  # (line number, text) -> events; raises BadLine


class AsteriskQueueLogConnector(Connector):
    Config = AsteriskQueueLogConfig
    config: AsteriskQueueLogConfig

    def __init__(self, config: AsteriskQueueLogConfig, context) -> None:
        super().__init__(config, context)
        self._zone = ZoneInfo(config.timezone)
        self._queues = frozenset(config.queues) if config.queues is not None else None
        self._callback_keys = frozenset(key.strip() for key in config.callback_keys)

    def poll(self) -> Iterator[SourceBatch]:
        yield from self._tail("queue_log", self.config.path, self._queue_log_line, min_fields=5)
        if self.config.refused_log is not None:
            yield from self._tail("refused_log", self.config.refused_log, self._refused_line, min_fields=4)

    # -- tailing --------------------------------------------------------------------------------------

    def _tail(self, key: str, path: Path, handle: LineHandler, min_fields: int) -> Iterator[SourceBatch]:
        """Batches of whatever complete lines are new in `path`, each with the position after them."""
        stored = Position.load(self.context.checkpoint(key))
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except OSError:
            descriptor = None  # not there right now (between rename and re-create): finish a rotated one
        try:
            current = os.fstat(descriptor) if descriptor is not None else None
            if stored is not None and (current is None or (stored.inode, stored.device) != (current.st_ino, current.st_dev)):
                rotated = self._rotated_since(path, stored, current)
                for name, position in rotated:
                    yield from self._read_rotated(key, name, position, handle, min_fields)
                if current is None:
                    return
                self.count("rotations")
                gone = [] if rotated else [f"{key}: the file read last (to line {stored.line}) is gone; lines written to it after that were not read"]
                if gone:
                    self.count("rotated_files_gone")
                stored = Position(current.st_ino, current.st_dev)
                yield SourceBatch(events=[], checkpoint=Checkpoint(self.context.name, key, stored.dump()), problems=gone)
            if current is None or descriptor is None:
                return
            if stored is None:
                stored = Position(current.st_ino, current.st_dev)
                if self.config.start_at == "end":
                    stored = self._at_end(descriptor, current.st_ino, current.st_dev, current.st_size)
                    yield SourceBatch(events=[], checkpoint=Checkpoint(self.context.name, key, stored.dump()))
            elif current.st_size < stored.offset or _head(descriptor, stored.offset) != stored.head:
                self.count("truncations")
                stored = Position(current.st_ino, current.st_dev)
            yield from self._read(key, path.name, descriptor, stored, handle, min_fields)
        finally:
            if descriptor is not None:
                os.close(descriptor)

    def _at_end(self, descriptor: int, inode: int, device: int, size: int) -> Position:
        """The position after the file's last complete line (lines are not counted: numbering starts there)."""
        start = max(0, size - self.config.max_line_bytes)
        tail = os.pread(descriptor, size - start, start)
        cut = tail.rfind(b"\n")
        offset = start + cut + 1 if cut >= 0 else 0
        return Position(inode, device, offset, 0, _head(descriptor, offset))

    def _rotated_since(self, path: Path, stored: Position, current: os.stat_result | None) -> list[tuple[Path, Position]]:
        """The rotated files still to read, oldest first: the rest of the one read last, then each newer one whole.

        Newer means written to later (mtime): the numbered (`queue_log.1`) and dated (`queue_log-20260302`)
        schemes sort the same way by it. When the file read last is gone (deleted or compressed), what was
        written to it after the last read cannot be read, and which generations came after it is unknown:
        the new file is read from its start, as before.
        """
        pattern = self.config.rotated_glob or f"{path.name}*"
        generations: list[tuple[Path, os.stat_result]] = []
        for candidate in path.parent.glob(pattern):
            if candidate == path or candidate.suffix.lower() in COMPRESSED:
                continue
            try:
                info = candidate.stat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                generations.append((candidate, info))
        last = next(((name, info) for name, info in generations if (info.st_ino, info.st_dev) == (stored.inode, stored.device)), None)
        if last is None:
            return []
        now = (current.st_ino, current.st_dev) if current is not None else None
        newer = sorted(
            (
                (name, info)
                for name, info in generations
                if info.st_mtime_ns > last[1].st_mtime_ns and (info.st_ino, info.st_dev) not in {(stored.inode, stored.device), now}
            ),
            key=lambda generation: (generation[1].st_mtime_ns, generation[0].name),
        )
        if newer:
            self.count("rotations_caught_up", len(newer))
        return [(last[0], stored)] + [(name, Position(info.st_ino, info.st_dev)) for name, info in newer]

    def _read_rotated(self, key: str, path: Path, start: Position, handle: LineHandler, min_fields: int) -> Iterator[SourceBatch]:
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except OSError:
            return  # renamed again or deleted since it was listed
        try:
            info = os.fstat(descriptor)
            if (info.st_ino, info.st_dev) == (start.inode, start.device):
                yield from self._read(key, path.name, descriptor, start, handle, min_fields)
        finally:
            os.close(descriptor)

    def _read(self, key: str, name: str, descriptor: int, start: Position, handle: LineHandler, min_fields: int) -> Iterator[SourceBatch]:
        position = start
        limit = self.config.max_line_bytes
        while True:
            chunk = os.pread(descriptor, self.config.max_bytes_per_batch, position.offset)
            if not chunk:
                return
            batch = SourceBatch(events=[])
            offset, line, skip = position.offset, position.line, position.skip
            cursor = 0
            while True:
                end = chunk.find(b"\n", cursor)
                if end < 0:
                    rest = len(chunk) - cursor
                    if (
                        rest > limit or (skip and rest) or (cursor == 0 and len(chunk) == self.config.max_bytes_per_batch)
                    ):  # an over-long line: drop what there is, keep dropping
                        if not skip:
                            line += 1
                            self._bad(batch, name, line, f"longer than {limit} bytes")
                        skip = True
                        cursor = len(chunk)
                    break
                raw = chunk[cursor:end]
                cursor = end + 1
                if skip:
                    skip = False
                    continue
                line += 1
                if len(raw) > limit:
                    self._bad(batch, name, line, f"longer than {limit} bytes")
                    continue
                try:
                    text = raw.decode("utf-8").rstrip("\r")
                except UnicodeDecodeError:
                    self._bad(batch, name, line, "not valid UTF-8")
                    continue
                if not text.strip():
                    continue
                try:
                    if text.count("|") + 1 < min_fields:
                        raise BadLine(f"fewer than {min_fields} '|'-separated fields")
                    batch.events += handle(line, text)
                    self.count("lines")
                except BadLine as exc:
                    self._bad(batch, name, line, str(exc))
            offset += cursor
            if offset == position.offset and skip == position.skip:
                return  # only an incomplete last line: wait for its newline
            position = Position(position.inode, position.device, offset, line, _head(descriptor, offset), skip)
            batch.checkpoint = Checkpoint(self.context.name, key, position.dump())
            yield batch
            if len(chunk) < self.config.max_bytes_per_batch:
                return

    def _bad(self, batch: SourceBatch, name: str, line: int, rule: str) -> None:
        self.count("bad_lines")
        batch.problems.append(f"{name}: line {line}: {rule}")

    # -- lines ----------------------------------------------------------------------------------------

    def _time(self, field: str) -> datetime:
        try:
            epoch = int(field.strip())
        except ValueError:
            raise BadLine("the timestamp is not a Unix time in whole seconds") from None
        if not 0 < epoch < 32503680000:  # before the year 3000
            raise BadLine("the timestamp is out of range")
        return datetime.fromtimestamp(epoch, timezone.utc).astimezone(self._zone)

    def _event(self, kind: str, at: datetime, call_id: str, **fields: object) -> SourceEvent:
        return SourceEvent(type=kind, at=at, source_key=call_id, refs={"call": ("call", call_id)}, fields=fields)

    def _queue_log_line(self, line: int, text: str) -> list[SourceEvent]:
        # Only fields 0-4 are looked at (and data1 of EXITWITHKEY, the key): ENTERQUEUE's data holds the caller id.
        parts = text.split("|")
        event_name = parts[4].strip().upper()
        refused = self.config.refused_statuses.get(event_name)
        if event_name not in ("ENTERQUEUE", "CONNECT", "EXITWITHKEY") and event_name not in ABANDONING and refused is None:
            self._time(parts[0])  # still a bad line when its time is not a time
            self.count("ignored")
            return []
        at = self._time(parts[0])
        call_id, queue = parts[1].strip(), parts[2].strip()
        if not call_id or call_id.upper() in ("NONE", "REALTIME", "MANAGER", "CLI"):
            raise BadLine(f"a {event_name} line without a call id")
        if self._queues is not None and queue not in self._queues:
            self.count("other_queues")
            return []
        if refused is not None:
            return [self._event("call.rejected", at, call_id, reason=refused)]
        if event_name == "ENTERQUEUE":
            return [self._event("call.offered", at, call_id, **({"queue": queue} if queue else {}))]
        if event_name == "CONNECT":
            return [self._event("call.answered", at, call_id)]
        if event_name == "EXITWITHKEY":
            key = parts[5].strip() if len(parts) > 5 else ""
            if key in self._callback_keys or self.config.exit_with_key == "callback_booked":
                return [self._event("call.callback_booked", at, call_id)]
        return [self._event("call.abandoned", at, call_id)]

    def _refused_line(self, line: int, text: str) -> list[SourceEvent]:
        parts = text.split("|")
        at = self._time(parts[0])
        call_id, queue, status = parts[1].strip(), parts[2].strip(), parts[3].strip().upper()
        if not call_id:
            raise BadLine("no call id")
        reason = self.config.refused_statuses.get(status)
        if reason is None:
            raise BadLine("the status is not among the configured `refused_statuses`")
        if self._queues is not None and queue not in self._queues:
            self.count("other_queues")
            return []
        return [self._event("call.rejected", at, call_id, reason=reason)]
