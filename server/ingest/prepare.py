"""Everything ingest can do with a group of batches before the write transaction.

Admission (each event belongs to its batch's unit and device), de-duplication inside the group, and
the rows to write: the archive rows and the metric-state rows, built as if every event were new.
None of it needs the database, so the MQTT consumer prepares the next group while the current one is
being written (the sqlite3 and psycopg drivers release the GIL while a statement runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import msgspec

from vardkoll.protocol import EventBase, EventRejected
from vardkoll.server.metrics import UnitConfig

from ..storage.stamp_keys import epoch_us
from ..units import UnitDirectory
from .entity_rows import EntityRows

Key = tuple[str, str]  # (unit, event id)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Source:
    """Where a batch came from and what it may speak for."""

    transport: str  # "mqtt" | "http"
    unit: str | None = None  # events must belong to this unit (None: any unit)
    device: str | None = None  # the sending device; stamped on events that name none


@dataclass
class IngestReport:
    committed: list[str] = field(default_factory=list)  # ids stored now or before: safe to delete at the sender
    rejected: list[tuple[str | None, str]] = field(default_factory=list)  # (event id if known, reason)
    new: int = 0
    duplicates: int = 0
    units_changed: set[str] = field(default_factory=set)
    # The unit of each rejected event, where it could be read, so its dead letter is visible to that unit.
    rejected_units: list[str | None] = field(default_factory=list)

    def reject(self, event_id: str | None, reason: str, unit: str | None) -> None:
        self.rejected.append((event_id, reason))
        self.rejected_units.append(unit)


@dataclass
class PreparedIngest:
    """A group of batches ready to commit: `IngestService.commit` writes it in one transaction."""

    sources: list[Source]
    reports: list[IngestReport]  # what admission found, per batch
    accepted: list[dict[Key, EventBase]]  # per batch, the events it is the first in the group to carry
    ordered: list[Key]  # every accepted event, in key order (the order rows are written in)
    events: dict[Key, EventBase]
    epochs: dict[Key, int]  # each event's `at` as epoch microseconds
    configs: dict[str, UnitConfig]
    received_at: datetime
    archive_rows: list[dict[str, Any]]  # for the events table, in `ordered` order
    entity_rows: EntityRows  # the metric-state rows if every accepted event turns out new


def same_event(a: EventBase, b: EventBase) -> bool:
    return msgspec.structs.replace(a, device=None) == msgspec.structs.replace(b, device=None)


def prepare(batches: list[tuple[Iterable[Any], Source]], units: UnitDirectory, received_at: datetime) -> PreparedIngest:
    """An event that two batches of the group carry counts in the first; the second reports it
    committed as a duplicate (or refuses it, if its content differs)."""
    reports = [IngestReport() for _ in batches]
    accepted: list[dict[Key, EventBase]] = [{} for _ in batches]
    first_seen: dict[Key, EventBase] = {}
    for (items, source), report, mine in zip(batches, reports, accepted):
        for item in items:
            event = _admit(item, source, report)
            if event is None:
                continue
            key = (event.unit, event.id)
            earlier = first_seen.get(key)
            if earlier is None:
                first_seen[key] = mine[key] = event
            elif same_event(earlier, event):
                report.duplicates += 1
                report.committed.append(event.id)
            else:
                report.reject(event.id, "event id was already used by a different event of this unit", event.unit)
    configs = {unit: units.config(unit) for unit in {unit for unit, _ in first_seen}}
    ordered = sorted(first_seen)
    epochs = {key: epoch_us(first_seen[key].at) for key in ordered}
    return PreparedIngest(
        sources=[source for _, source in batches], reports=reports, accepted=accepted, ordered=ordered, events=first_seen,
        epochs=epochs, configs=configs, received_at=received_at,
        archive_rows=archive_rows([first_seen[key] for key in ordered], [epochs[key] for key in ordered], received_at),
        entity_rows=entity_rows(ordered, first_seen, epochs, configs),
    )


def archive_rows(events: list[EventBase], epochs: list[int], received_at: datetime) -> list[dict[str, Any]]:
    encode = msgspec.json.encode
    return [
        {"unit": e.unit, "event_id": e.id, "type": e.__struct_config__.tag, "at_us": at_us, "device": e.device, "body": encode(e), "received_at": received_at}
        for e, at_us in zip(events, epochs)
    ]


def entity_rows(keys: list[Key], events: dict[Key, EventBase], epochs: dict[Key, int], configs: dict[str, UnitConfig]) -> EntityRows:
    rows = EntityRows(epochs)
    for key in keys:
        event = events[key]
        rows.add(event, configs[event.unit])
    return rows


def _admit(item: Any, source: Source, report: IngestReport) -> EventBase | None:
    if isinstance(item, EventRejected):
        report.reject(None, item.reason, source.unit)
        return None
    event: EventBase = item
    if source.unit is not None and event.unit != source.unit:
        report.reject(event.id, f"event for unit {event.unit} sent by a device of unit {source.unit}", source.unit)
        return None
    if source.device is not None:
        if event.device is None:
            event = msgspec.structs.replace(event, device=source.device)
        elif event.device != source.device:
            report.reject(event.id, f"event names device {event.device} but came from device {source.device}", event.unit)
            return None
    if event.at < _EPOCH:
        report.reject(event.id, "field 'at' is before 1970", event.unit)
        return None
    return event
