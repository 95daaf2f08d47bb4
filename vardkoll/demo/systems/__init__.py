"""The clinics' simulated source systems: each writes what the real one would, where a connector reads it.

A system takes the generator's events of one clinic (`vardkoll.simulation`), turns them into its own
records (queue_log lines, export rows, FHIR resources, button presses), each with the moment it is
written, and tells the collector's config which connector reads it. Events the system cannot express
(a FHIR record system has no "patient chose to wait") are left out, and so are absent from the intended
events too: what a clinic's figures show is what its systems hold.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol

Event = dict[str, Any]


@dataclass(order=True)
class Write:
    """One record written into a system at `at` (epoch seconds)."""

    at: float
    order: int
    apply: Callable[[], None] = field(compare=False)


class SourceSystem(Protocol):
    name: str  # e.g. "Asterisk queue_log"

    def plan(self, events: list[Event]) -> list[tuple[float, Callable[[], None]]]:
        """The writes this system will make of the clinic's events, each with its moment."""
        ...

    def connectors(self) -> str:
        """The `[[connectors]]` tables (TOML) of the collector that reads this system."""
        ...

    def tick(self, now: float, catching_up: bool) -> bool:
        """Periodic work (rewrite an export, rotate a log); False to hold the clock back until later."""
        ...

    def close(self) -> None: ...


def instant(event: Event) -> datetime:
    return datetime.fromisoformat(event["at"])


def epoch(event: Event) -> float:
    return instant(event).timestamp()


@dataclass
class Call:
    call: str
    events: dict[str, Event] = field(default_factory=dict)  # type → the call's event of that type

    @property
    def first(self) -> Event:
        return self.events.get("call.offered") or self.events["call.rejected"]


@dataclass
class Case:
    case: str
    contacts: list[Event] = field(default_factory=list)
    assessed: list[Event] = field(default_factory=list)
    cancelled: Event | None = None


def calls_of(events: list[Event]) -> list[Call]:
    calls: dict[str, Call] = {}
    for event in events:
        if event["type"].startswith("call."):
            calls.setdefault(event["call"], Call(event["call"])).events.setdefault(event["type"], event)
    return [c for c in calls.values() if "call.offered" in c.events or "call.rejected" in c.events]


def cases_of(events: list[Event]) -> list[Case]:
    cases: dict[str, Case] = {}
    for event in events:
        kind = event["type"]
        if kind == "care.contact":
            cases.setdefault(event["case"], Case(event["case"])).contacts.append(event)
        elif kind == "care.assessed":
            cases.setdefault(event["case"], Case(event["case"])).assessed.append(event)
        elif kind == "care.cancelled":
            case = cases.setdefault(event["case"], Case(event["case"]))
            case.cancelled = case.cancelled or event
    for case in cases.values():
        case.contacts.sort(key=epoch)
        case.assessed.sort(key=epoch)
    return list(cases.values())


def by_type(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e["type"] == kind]


def group(items: list[Any], key: Callable[[Any], Any]) -> dict[Any, list[Any]]:
    grouped: defaultdict[Any, list[Any]] = defaultdict(list)
    for item in items:
        grouped[key(item)].append(item)
    return grouped
