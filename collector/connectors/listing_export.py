"""Listing export: the day's listing figures per doctor (CSV or JSON) → one `listing.snapshot` per file.

Record systems and regional listing services can export, per doctor, how many patients are listed with
them. Each file in the watched folder is one day's export; it gives one `listing.snapshot`:

- `listed`: the sum of the `listed` column over all rows (rows without a doctor id, e.g. patients
  listed at the unit without a named doctor, count here and nowhere else);
- `named_doctor`: the sum of the `named_doctor` column when one is mapped, else `named_doctor_total`
  when configured, else the sum of `listed` over the rows that name a doctor;
- `doctors`: one entry per doctor id, `{doctor, listed, active}`, the doctor id pseudonymised on the
  device as kind `practitioner` (so it matches `practitioner` / `fixed_doctor` of visits).

The snapshot's time is the date in the file name (`date_pattern`, first match) at `snapshot_time` in
`timezone`; a file without a date in its name is reported and not read. Files are read once they have
been unchanged for `settle_s` and remembered by name and content hash (a checkpoint stored with the
event), so a restart does not read them again; a corrected export of the same day gives a new snapshot
(its event id depends on the content).

CSV: a header row; the columns named in `columns` (others, such as doctor names, are never read).
JSON: a list of row objects, or an object whose `doctors` key holds that list (and which may carry
`named_doctor`); row keys are the names in `columns`.

A bad row (an empty or negative count, an `active` value that is not a yes/no word, a doctor id
twice) makes the file unusable: a snapshot must be complete or absent. It is reported as
`FILE: line N: rule` (CSV) or `FILE: row N: rule` (JSON), never with its values, counted, and the file
is not checkpointed (a corrected file is read again).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from msgspec import Meta, field

from ..outbox import Checkpoint
from .base import Connector, ConnectorConfig, SourceBatch, SourceEvent

TRUE_WORDS = frozenset({"1", "true", "yes", "ja", "j", "y", "aktiv", "active"})
FALSE_WORDS = frozenset({"0", "false", "no", "nej", "n", "inaktiv", "inactive"})


class ListingColumns(ConnectorConfig):
    doctor: str = "doctor_id"  # the doctor's id in the source (HSA-id or local id; pseudonymised on the device)
    listed: str = "listed"
    active: str | None = "active"  # unset: every doctor counts as active
    named_doctor: str | None = None  # a per-row count of patients with a named fixed doctor, when exported


class ListingExportConfig(ConnectorConfig):
    time_zone_keys: ClassVar[tuple[str, ...]] = ("timezone",)

    folder: Path
    pattern: str = "*"  # files ending in .json are read as JSON, others as CSV
    format: Literal["auto", "csv", "json"] = "auto"
    delimiter: Annotated[str, Meta(min_length=1, max_length=1)] = ";"
    encoding: str = "utf-8-sig"
    timezone: str = "Europe/Stockholm"
    date_pattern: str = r"(\d{4})-?(\d{2})-?(\d{2})"  # year, month, day groups in the file name
    snapshot_time: time = time(0, 0)
    settle_s: Annotated[float, Meta(ge=0)] = 10.0
    named_doctor_total: Annotated[int, Meta(ge=0)] | None = None
    no_doctor_ids: list[str] = field(default_factory=lambda: ["", "-", "ingen", "none"])  # doctor ids meaning "listed without a named doctor"
    columns: ListingColumns = ListingColumns()

    def check(self) -> None:
        try:
            if re.compile(self.date_pattern).groups != 3:
                raise ValueError("date_pattern: date_pattern needs three groups: year, month, day")
        except re.error as exc:
            raise ValueError(f"date_pattern: date_pattern is not a regular expression: {exc}") from None


class BadInput(ValueError):
    pass


class ListingExportConnector(Connector):
    Config = ListingExportConfig
    config: ListingExportConfig

    def __init__(self, config: ListingExportConfig, context) -> None:
        super().__init__(config, context)
        self._zone = ZoneInfo(config.timezone)
        self._date = re.compile(config.date_pattern)
        self._no_doctor = frozenset(word.strip().casefold() for word in config.no_doctor_ids)
        self._reported: dict[str, str] = {}

    def poll(self) -> Iterator[SourceBatch]:
        now = self.context.wall_clock()
        for path in sorted(self.config.folder.glob(self.config.pattern)):
            try:
                if not path.is_file() or path.name.startswith(".") or now - path.stat().st_mtime < self.config.settle_s:
                    continue
                content = path.read_bytes()
            except OSError:
                continue
            digest = "sha256:" + hashlib.sha256(content).hexdigest()
            if self.context.checkpoint(path.name) == digest or self._reported.get(path.name) == digest:
                continue
            batch = SourceBatch(events=[])
            try:
                batch.events.append(self.read_file(path.name, content, digest))
                batch.checkpoint = Checkpoint(self.context.name, path.name, digest)
                self.count("files")
            except BadInput as exc:
                self.count("bad_files")
                batch.problems.append(str(exc))
                self._reported[path.name] = digest
            yield batch

    def read_file(self, name: str, content: bytes, digest: str) -> SourceEvent:
        match = self._date.search(name)
        if match is None:
            raise BadInput(f"{name}: no date in the file name (`date_pattern`)")
        try:
            day = date(*(int(group) for group in match.groups()))
        except ValueError:
            raise BadInput(f"{name}: the date in the file name is not a date") from None
        try:
            text = content.decode(self.config.encoding)
        except (UnicodeDecodeError, LookupError):
            raise BadInput(f"{name}: not readable as {self.config.encoding}; set `encoding` in the connector config") from None
        as_json = self.config.format == "json" or (self.config.format == "auto" and name.lower().endswith(".json"))
        rows, named_total = self._json_rows(name, text) if as_json else self._csv_rows(name, text)
        where = "row" if as_json else "line"
        columns = self.config.columns
        listed = named = 0
        doctors: dict[str, tuple[int, bool]] = {}
        for number, row in rows:
            doctor = self._text(row.get(columns.doctor))
            count = self._count(name, where, number, row.get(columns.listed), columns.listed)
            listed += count
            if columns.named_doctor:
                named += self._count(name, where, number, row.get(columns.named_doctor), columns.named_doctor)
            if doctor.casefold() in self._no_doctor:
                continue
            if doctor in doctors:
                raise BadInput(f"{name}: {where} {number}: the doctor id is on an earlier {where} too")
            doctors[doctor] = (count, self._active(name, where, number, row.get(columns.active) if columns.active else None))
        if not columns.named_doctor:
            if named_total is not None:
                named = named_total
            elif self.config.named_doctor_total is not None:
                named = self.config.named_doctor_total
            else:
                named = sum(count for count, _ in doctors.values())
        if named > listed:
            raise BadInput(f"{name}: named_doctor ({named}) exceeds listed ({listed})")
        at = datetime.combine(day, self.config.snapshot_time, self._zone)
        entries = [{"doctor": None, "listed": count, "active": active} for count, active in doctors.values()]
        refs = {f"doctors.{index}.doctor": ("practitioner", doctor) for index, doctor in enumerate(doctors)}
        return SourceEvent(
            type="listing.snapshot",
            at=at,
            source_key=f"{name}\x1f{digest}",
            refs=refs,
            fields={"listed": listed, "named_doctor": named, "doctors": entries},
        )

    # -- formats --------------------------------------------------------------------------------------

    def _csv_rows(self, name: str, text: str) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=self.config.delimiter)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        columns = self.config.columns
        missing = [c for c in (columns.doctor, columns.listed, columns.active, columns.named_doctor) if c and c not in header]
        if missing:
            raise BadInput(f"{name}: column(s) {', '.join(missing)} not in the header; check `columns` in the connector config")
        rows = []
        try:
            for row in reader:
                if None in row:
                    raise BadInput(f"{name}: line {reader.line_num}: more cells than the header has columns")
                rows.append((reader.line_num, row))
        except csv.Error:
            raise BadInput(f"{name}: line {reader.line_num}: not valid CSV") from None
        return rows, None

    def _json_rows(self, name: str, text: str) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        try:
            document = json.loads(text)
        except ValueError:
            raise BadInput(f"{name}: not valid JSON") from None
        named_total = None
        if isinstance(document, dict):
            named = document.get("named_doctor")
            if named is not None:
                if not isinstance(named, int) or isinstance(named, bool) or named < 0:
                    raise BadInput(f"{name}: `named_doctor` is not a count")
                named_total = named
            document = document.get("doctors")
        if not isinstance(document, list) or not all(isinstance(row, dict) for row in document):
            raise BadInput(f"{name}: expected a list of row objects (or an object with `doctors`)")
        return [(number, row) for number, row in enumerate(document, start=1)], named_total

    # -- cells ----------------------------------------------------------------------------------------

    @staticmethod
    def _text(value: Any) -> str:
        return "" if value is None else str(value).strip()

    def _count(self, name: str, where: str, number: int, value: Any, column: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            count = value
        else:
            text = self._text(value) if not isinstance(value, bool) else "x"
            if not text.isdigit():
                raise BadInput(f"{name}: {where} {number}: '{column}' is not a count (a whole number ≥ 0)")
            count = int(text)
        if count < 0:
            raise BadInput(f"{name}: {where} {number}: '{column}' is not a count (a whole number ≥ 0)")
        return count

    def _active(self, name: str, where: str, number: int, value: Any) -> bool:
        if value is None:
            return True
        if isinstance(value, bool):
            return value
        word = self._text(value).casefold()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise BadInput(f"{name}: {where} {number}: '{self.config.columns.active}' is not a yes/no value")
