"""Callback-system exports: a watched folder of CSV files, one row per call (domain research 3.1).

Many Swedish clinics' callback systems (TeleQ, Telia ACE, Puzzel, ...) can only export their statistics.
Each row describes one call, or one callback attempt of it: when it came in, when a callback was booked
and made, and how it ended. Each event's own time is part of its id, so two attempts are two events.
The column names and outcome words are configurable; columns that are not mapped (the caller's phone
number, names) are never read.

One row gives:
- queue full / closed (from `queue_status` or the outcome) → `call.rejected` at the call time, nothing else;
- otherwise `call.offered` at the call time, and
  - `call.answered` (outcome answered; at `answered_time` if mapped, else the call time),
  - `call.abandoned` (outcome abandoned),
  - `call.callback_booked` at `callback_booked` (with `slot` from `callback_slot` if mapped),
  - `call.callback_done` at `callback_made`, `reached: false` when the outcome says not reached.

A bad row is counted and reported by file and line (never with its values) and the rest of the file is
read. A file is read once it has been unchanged for `settle_s`; its name and content hash are stored as a
checkpoint together with its events, so a restart does not read it again (a file changed later is read
again; its unchanged rows give the same event ids, which the outbox and the server count once).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo

from msgspec import Meta, field, structs

from ..outbox import Checkpoint
from .base import Connector, ConnectorConfig, SourceBatch, SourceEvent

Outcome = Literal["answered", "abandoned", "reached", "not_reached", "pending", "queue_full", "closed"]


class CallbackColumns(ConnectorConfig):
    """Header names in the export. Unset optional columns are not read."""

    call_id: str = "call_id"  # the callback system's id of the call (pseudonymised on the device)
    # The phone system's id of the same call (e.g. Asterisk's uniqueid), where another connector reports the
    # queue: rows are then that call's events. Set it to `call_id`'s own name when that column is the id.
    queue_call_id: str | None = None
    call_time: str = "call_time"
    callback_booked: str | None = "callback_booked"
    callback_slot: str | None = None  # the promised callback time
    callback_made: str | None = "callback_made"
    answered_time: str | None = None
    outcome: str | None = "outcome"
    queue_status: str | None = None  # a separate column saying "full" / "closed" for refused calls
    queue: str | None = None


class OutcomeWords(ConnectorConfig):
    """Which cell values (compared case-insensitively, trimmed) mean which outcome."""

    answered: list[str] = field(default_factory=lambda: ["answered", "besvarad"])
    abandoned: list[str] = field(default_factory=lambda: ["abandoned", "avbruten", "lagt på"])
    reached: list[str] = field(default_factory=lambda: ["reached", "nådd", "klar"])
    not_reached: list[str] = field(default_factory=lambda: ["not_reached", "ej nådd", "ej svar"])
    pending: list[str] = field(default_factory=lambda: ["pending", "bokad", ""])
    queue_full: list[str] = field(default_factory=lambda: ["queue_full", "full", "kö full"])
    closed: list[str] = field(default_factory=lambda: ["closed", "stängd"])

    def lookup(self) -> dict[str, Outcome]:
        table: dict[str, Outcome] = {}
        for outcome in ("answered", "abandoned", "reached", "not_reached", "pending", "queue_full", "closed"):
            for word in getattr(self, outcome):
                table[word.strip().casefold()] = outcome
        return table


class CallbackCsvConfig(ConnectorConfig):
    time_zone_keys: ClassVar[tuple[str, ...]] = ("timezone",)

    folder: Path
    pattern: str = "*.csv"
    delimiter: Annotated[str, Meta(min_length=1, max_length=1)] = ";"
    encoding: str = "utf-8-sig"
    timezone: str = "Europe/Stockholm"  # for times written without an offset
    time_formats: list[str] = field(default_factory=lambda: ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"])
    settle_s: Annotated[float, Meta(ge=0)] = 10.0  # a file must be this old before it is read
    queue_name: str | None = None  # one queue name for every call, when the export has no queue column
    columns: CallbackColumns = CallbackColumns()
    outcomes: OutcomeWords = OutcomeWords()


class BadRow(ValueError):
    pass


class CallbackCsvConnector(Connector):
    Config = CallbackCsvConfig
    config: CallbackCsvConfig

    def __init__(self, config: CallbackCsvConfig, context) -> None:
        super().__init__(config, context)
        self._zone = ZoneInfo(config.timezone)
        self._outcomes = config.outcomes.lookup()
        self._reported: dict[str, str] = {}  # file name -> content hash of a file that could not be read at all

    def poll(self) -> Iterator[SourceBatch]:
        now = self.context.wall_clock()
        for path in sorted(self.config.folder.glob(self.config.pattern)):
            try:
                if not path.is_file() or now - path.stat().st_mtime < self.config.settle_s:
                    continue
                content = path.read_bytes()
            except OSError:
                continue  # gone or unreadable right now: try again next poll
            digest = "sha256:" + hashlib.sha256(content).hexdigest()
            if self.context.checkpoint(path.name) == digest or self._reported.get(path.name) == digest:
                continue
            batch, readable = self.read_file(path.name, content)
            if readable:
                batch.checkpoint = Checkpoint(self.context.name, path.name, digest)
            else:  # reported once; read again when the file (or, after a restart, the config) changes
                self._reported[path.name] = digest
            yield batch

    def read_file(self, name: str, content: bytes) -> tuple[SourceBatch, bool]:
        """The events of one export, and whether the file could be read at all."""
        batch = SourceBatch(events=[])
        try:
            text = content.decode(self.config.encoding)
        except (UnicodeDecodeError, LookupError):
            self._file_problem(batch, f"{name}: not readable as {self.config.encoding}; set `encoding` in the connector config")
            return batch, False
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=self.config.delimiter)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        missing = [c for c in self._required_columns() if c not in header]
        if missing:
            self._file_problem(batch, f"{name}: column(s) {', '.join(missing)} not in the header; check `columns` in the connector config")
            return batch, False
        self.count("files")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                self.count("bad_rows")
                batch.problems.append(f"{name}: line {reader.line_num}: not valid CSV")
                continue
            try:
                batch.events += self._events_of(row)
                self.count("rows")
            except BadRow as exc:
                self.count("bad_rows")
                batch.problems.append(f"{name}: line {reader.line_num}: {exc}")
        return batch, True

    def _file_problem(self, batch: SourceBatch, problem: str) -> None:
        self.count("bad_files")
        batch.problems.append(problem)

    def _required_columns(self) -> list[str]:
        columns = self.config.columns
        return [name for name in structs.astuple(columns) if name]

    # -- one row --------------------------------------------------------------------------------------

    def _events_of(self, row: dict[str, str | None]) -> list[SourceEvent]:
        columns = self.config.columns
        if None in row:  # more cells than header names
            raise BadRow("more cells than the header has columns")
        call_id = self._cell(row, columns.call_id)
        if not call_id:
            raise BadRow(f"column '{columns.call_id}' is empty")
        if columns.queue_call_id:
            call_id = self._cell(row, columns.queue_call_id)
            if not call_id:
                raise BadRow(f"column '{columns.queue_call_id}' is empty: the callback cannot be linked to its call")
        call_time = self._time(row, columns.call_time, required=True)
        assert call_time is not None
        outcome = self._outcome(row)
        refs = {"call": ("call", call_id)}

        def event(kind: str, at: datetime, **fields: object) -> SourceEvent:
            # A callback system writes one row per attempt: an unreached attempt one day and a reached one
            # the next are both facts (the earliest counts, SPEC 2), so each event's own time is in its id.
            return SourceEvent(type=kind, at=at, source_key=call_id, refs=refs, fields=fields, occurrence=at.isoformat())

        refused = self._queue_status(row) or (outcome if outcome in ("queue_full", "closed") else None)
        if refused:
            return [event("call.rejected", call_time, reason=refused)]
        queue = self._cell(row, columns.queue) if columns.queue else self.config.queue_name
        events = [event("call.offered", call_time, **({"queue": queue} if queue else {}))]
        if outcome == "answered":
            events.append(event("call.answered", self._time(row, columns.answered_time) or call_time))
        elif outcome == "abandoned":
            events.append(event("call.abandoned", call_time))
        booked = self._time(row, columns.callback_booked)
        if booked is not None:
            slot = self._time(row, columns.callback_slot)
            events.append(event("call.callback_booked", booked, **({"slot": slot.isoformat()} if slot else {})))
        made = self._time(row, columns.callback_made)
        if made is not None:
            events.append(event("call.callback_done", made, reached=outcome != "not_reached"))
        elif outcome in ("reached", "not_reached"):
            raise BadRow(f"the outcome says called back but column '{columns.callback_made}' is empty")
        return events

    @staticmethod
    def _cell(row: dict[str, str | None], column: str | None) -> str:
        if not column:
            return ""
        return (row.get(column) or "").strip()

    def _time(self, row: dict[str, str | None], column: str | None, required: bool = False) -> datetime | None:
        text = self._cell(row, column)
        if not text:
            if required:
                raise BadRow(f"column '{column}' is empty")
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
            for pattern in self.config.time_formats:
                try:
                    moment = datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise BadRow(f"column '{column}' is not a time in a configured format (`time_formats`)")
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self._zone)

    def _outcome(self, row: dict[str, str | None]) -> Outcome:
        column = self.config.columns.outcome
        if not column:
            return "pending"
        outcome = self._outcomes.get(self._cell(row, column).casefold())
        if outcome is None:
            raise BadRow(f"column '{column}' holds a value that is not among the configured `outcomes`")
        return outcome

    def _queue_status(self, row: dict[str, str | None]) -> Literal["queue_full", "closed"] | None:
        column = self.config.columns.queue_status
        text = self._cell(row, column).casefold()
        if not column or not text:
            return None
        outcome = self._outcomes.get(text)
        if outcome in ("queue_full", "closed"):
            return outcome
        if outcome is None:
            raise BadRow(f"column '{column}' holds a value that is not among the configured `outcomes`")
        return None
