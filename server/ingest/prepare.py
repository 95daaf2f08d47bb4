"""Everything ingest can do with a group of batches before the write transaction.

Admission (each event belongs to its batch's unit and device), de-duplication inside the group, and
the rows to write: the archive rows and the metric-state rows, built as if every event were new.
None of it needs the database, so it is done before the write transaction opens and holds the
database's one writer (SQLite) or its row locks (PostgreSQL) no longer than the writing takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

import msgspec

from vardkoll.protocol import EventBase, EventRejected
from vardkoll.protocol.sameness import same_event
from vardkoll.server.metrics import METRICS, UnitConfig
from vardkoll.server.metrics.unit_state import METRIC_OF_CLASS

from ..storage.stamp_keys import epoch_us
from ..registry.directory import UnitDirectory
from .entity_rows import EntityRows

Key = tuple[str, str]  # (unit, event id)


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
    archive_rows: list[tuple[Any, ...]]  # for the events table (ARCHIVE_COLUMNS), in `ordered` order
    # If every accepted event turns out new: the metric-state rows and what they change per unit.
    entity_rows: EntityRows
    activity: ActivityByUnit


@dataclass
class ActivityByUnit:
    """Per unit, its latest event (epoch microseconds) and the UTC days (since 1970) its events fall on,
    each with the metrics of those events (`METRIC_BITS` or-ed together)."""

    latest: dict[str, int] = field(default_factory=dict)
    days: dict[tuple[str, int], int] = field(default_factory=dict)


METRIC_BITS = {metric: 1 << i for i, metric in enumerate(METRICS)}
_BIT_OF_CLASS = {kind: METRIC_BITS[metric] for kind, metric in METRIC_OF_CLASS.items()}
ARCHIVE_COLUMNS = ("unit", "event_id", "type", "at_us", "device", "body", "received_at")
_DAY_US = 86_400_000_000
DEFAULT_CLOCK_SKEW = timedelta(hours=24)


def prepare(
    batches: list[tuple[Iterable[Any], Source]], units: UnitDirectory, received_at: datetime, clock_skew: timedelta = DEFAULT_CLOCK_SKEW
) -> PreparedIngest:
    """An event that two batches of the group carry counts in the first; the second reports it
    committed as a duplicate (or refuses it, if its content differs). An event further ahead of
    `received_at` than `clock_skew` is refused: it would count in figures of days to come and move the
    unit's latest event into the future."""
    latest_us = epoch_us(received_at + clock_skew)
    reports = [IngestReport() for _ in batches]
    accepted: list[dict[Key, EventBase]] = [{} for _ in batches]
    first_seen: dict[Key, EventBase] = {}
    epochs: dict[Key, int] = {}
    for (items, source), report, mine in zip(batches, reports, accepted):
        for item in items:
            admitted = _admit(item, source, report, latest_us)
            if admitted is None:
                continue
            event, micros = admitted
            key = (event.unit, event.id)
            earlier = first_seen.get(key)
            if earlier is None:
                first_seen[key] = mine[key] = event
                epochs[key] = micros
            elif same_event(earlier, event):
                report.duplicates += 1
                report.committed.append(event.id)
            else:
                report.reject(event.id, "event id was already used by a different event of this unit", event.unit)
    configs = {unit: units.config(unit) for unit in {unit for unit, _ in first_seen}}
    ordered = sorted(first_seen)
    archive, entity, activity = new_rows(ordered, first_seen, epochs, configs, received_at)
    return PreparedIngest(
        sources=[source for _, source in batches],
        reports=reports,
        accepted=accepted,
        ordered=ordered,
        events=first_seen,
        epochs=epochs,
        configs=configs,
        received_at=received_at,
        archive_rows=archive,
        entity_rows=entity,
        activity=activity,
    )


def new_rows(
    keys: list[Key], events: dict[Key, EventBase], epochs: dict[Key, int], configs: dict[str, UnitConfig], received_at: datetime | None
) -> tuple[list[tuple[Any, ...]], EntityRows, ActivityByUnit]:
    """What the events of `keys` add if they are new: their archive rows (none without `received_at`),
    their metric-state rows, and per unit the latest event and the days they fall on. One pass."""
    encode = msgspec.json.encode
    zones = {unit: config.tz for unit, config in configs.items()}
    archive: list[tuple[Any, ...]] = []
    entity = EntityRows()
    activity = ActivityByUnit()
    latest, days = activity.latest, activity.days
    for key in keys:
        unit = key[0]
        event, micros = events[key], epochs[key]
        body = None
        if received_at is not None:
            body = encode(event)
            archive.append((unit, key[1], event.__struct_config__.tag, micros, event.device, body, received_at))
        entity.add(event, micros, zones[unit], body)
        if micros > latest.get(unit, -1):
            latest[unit] = micros
        day = (unit, micros // _DAY_US)
        days[day] = days.get(day, 0) | _BIT_OF_CLASS[type(event)]
    return archive, entity, activity


def _admit(item: Any, source: Source, report: IngestReport, latest_us: int) -> tuple[EventBase, int] | None:
    """The event (stamped with the sending device) and its `at` as epoch microseconds, or None if refused."""
    if isinstance(item, EventRejected):
        report.reject(item.event_id, item.reason, source.unit)
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
    micros = epoch_us(event.at)
    if micros < 0:  # the protocol refuses times before 2000; kept for events made in code
        report.reject(event.id, "field 'at' is before 1970", event.unit)
        return None
    if micros > latest_us:
        report.reject(
            event.id,
            "field 'at' is further ahead of the server's clock than the allowed clock skew (VARDKOLL_MAX_CLOCK_SKEW_S); check the sending system's clock",
            event.unit,
        )
        return None
    return event, micros
