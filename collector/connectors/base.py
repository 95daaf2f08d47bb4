"""What every connector is: a small unit that reads one source and yields source events.

A connector never builds wire events itself. It yields `SourceEvent`s whose references to people,
calls and cases are raw source ids in `refs`; the agent's pipeline (`collector.pipeline`) turns them
into keyed pseudonyms and makes the event id, so no connector can put a raw id on the wire by mistake.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, ClassVar, Literal

from ..outbox import Checkpoint
from ..settings import Settings


class ConnectorConfig(Settings):
    """Base of every connector's typed config: snake_case keys, unknown keys are errors; a key naming an
    IANA time zone is listed in `time_zone_keys` (checked when the config is read)."""


@dataclass(frozen=True)
class SourceEvent:
    type: str  # a protocol event type, e.g. "call.offered"
    at: datetime  # when it happened, from the source system's own timestamps (timezone-aware)
    source_key: str  # what the event is about in the source (e.g. the call id): makes the event id stable
    refs: dict[str, tuple[str, str]] = field(default_factory=dict)  # wire field -> (pseudonym kind, raw source id)
    fields: dict[str, Any] = field(default_factory=dict)  # other wire fields, already in protocol form
    # Where `at` came from: the source system's own timestamp (preferred), or this device's clock, in
    # which case the event is held while that clock is not trustworthy (collector/clock.py).
    clock: Literal["source", "device"] = "source"
    # How finely `at` is written: "auto" (no fraction when it has none) or "milliseconds" (the firmware
    # bridge: device clocks count milliseconds).
    at_timespec: Literal["auto", "milliseconds"] = "auto"
    # What tells two happenings of one kind about one thing apart (a callback attempt's time), where the
    # source can repeat them: it goes into the event id, so each is its own event on the wire.
    occurrence: str = ""


def joined_key(*parts: object) -> str:
    """A source key or raw reference made of several parts, e.g. (device id, store id, local seq), joined by
    US (0x1F), a control character no part may contain, so different parts never give the same key."""
    return "\x1f".join(str(part) for part in parts)


@dataclass
class SourceBatch:
    """What one unit of source input (e.g. one file) gave, stored with its checkpoint in one transaction."""

    events: list[SourceEvent]
    checkpoint: Checkpoint | None = None
    problems: list[str] = field(default_factory=list)  # safe to log: positions and rules, never values


@dataclass(frozen=True)
class ConnectorContext:
    name: str  # this connector's instance name (also the checkpoint source)
    checkpoint: Callable[[str], str | None]  # key -> stored value (from the outbox database)
    wall_clock: Callable[[], float]  # seconds since the epoch (file ages)


class Connector(ABC):
    Config: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self.counters: dict[str, int] = {}

    @abstractmethod
    def poll(self) -> Iterator[SourceBatch]:
        """Read whatever is new; called by the agent every `poll_interval_s`."""

    def close(self) -> None:  # noqa: B027  (optional: most connectors hold nothing open)
        """Release what the connector holds open (an HTTP client, say); called when the agent stops."""

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by
