"""The demo's clinics: which simulated systems each has, and the timeline on which those systems write.

The same realistic generator as the benchmarks (`vardkoll.simulation`) decides what happens at each
clinic over four weeks up to today. Each clinic's systems turn that into their own records; the
`Timeline` writes the past weeks as fast as the collectors take them, then today's records as their
moments come.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from vardkoll.simulation import generate

from .intent import IntendedEvents
from .systems import Event, SourceSystem, Write
from .systems.asterisk import AsteriskQueue
from .systems.callback_export import CallbackExport
from .systems.fhir_server import FhirRecords, FhirServer
from .systems.listing_export import ListingExport
from .systems.serial_devices import SerialDevices

STOCKHOLM = ZoneInfo("Europe/Stockholm")
HISTORY_DAYS = 27  # before today: four weeks with today
CLINIC_NAMES = ("Vårdcentralen Norrby", "Vårdcentralen Åsen", "Hälsocentralen Älvdal", "Vårdcentralen Söderhöjd", "Vårdcentralen Björkö")
# Phone system and record system of each clinic, in turn.
PROFILES = (("asterisk", "fhir"), ("callback", "serial"), ("callback", "fhir"), ("asterisk", "serial"))
HISTORY_STEP_S = 6 * 3600  # while catching up: six hours of the past per step


@dataclass
class Clinic:
    unit: str
    name: str
    device: str
    folder: Path
    phone: str  # "asterisk" | "callback"
    records: str  # "fhir" | "serial"
    systems: list[SourceSystem] = field(default_factory=list)

    @property
    def serial(self) -> SerialDevices | None:
        return next((s for s in self.systems if isinstance(s, SerialDevices)), None)

    @property
    def asterisk(self) -> AsteriskQueue | None:
        return next((s for s in self.systems if isinstance(s, AsteriskQueue)), None)

    def describe(self) -> str:
        return " + ".join(system.name for system in self.systems)

    def connectors(self) -> str:
        return "".join(system.connectors() for system in self.systems)


def build_clinics(
    count: int,
    folder: Path,
    intent_path: Path,
    fhir: FhirServer,
    now: datetime,
    seed: int = 7,
    history_days: int = HISTORY_DAYS,
) -> tuple[list[Clinic], IntendedEvents, list[Write], date]:
    today = now.astimezone(STOCKHOLM).date()
    first_day = today - timedelta(days=history_days)
    generated: dict[str, dict[str, Event]] = {}
    devices: dict[str, str] = {}
    for event in generate(seed=seed, units=count, days=history_days + 1, start_date=first_day):
        generated.setdefault(event["unit"], {}).setdefault(event["id"], event)  # a repeated delivery counts once
        devices.setdefault(event["unit"], event["device"])
    intent = IntendedEvents(intent_path, devices)
    clinics: list[Clinic] = []
    writes: list[Write] = []
    for index, unit in enumerate(sorted(generated)):
        phone, records = PROFILES[index % len(PROFILES)]
        tag = unit.rsplit("-", 1)[1].lower()
        home = folder / tag
        clinic = Clinic(unit, CLINIC_NAMES[index % len(CLINIC_NAMES)], devices[unit], home, phone, records)
        if phone == "asterisk":
            queue = AsteriskQueue(unit, home / "asterisk", intent, STOCKHOLM)
            clinic.systems += [queue, CallbackExport(unit, home / "callbacks", intent, STOCKHOLM, call_ids=queue.call_ids, callbacks_only=True)]
        else:
            clinic.systems.append(CallbackExport(unit, home / "callbacks", intent, STOCKHOLM))
        clinic.systems.append(
            FhirRecords(unit, tag, home / "fhir", intent, STOCKHOLM, fhir) if records == "fhir" else SerialDevices(unit, home, intent, STOCKHOLM)
        )
        clinic.systems.append(ListingExport(unit, home / "listing", intent, STOCKHOLM))
        events = sorted(generated[unit].values(), key=lambda e: (datetime.fromisoformat(e["at"]), e["id"]))
        for system in clinic.systems:
            for at, apply in system.plan(events):
                writes.append(Write(at, len(writes), apply))
        clinics.append(clinic)
    writes.sort()
    return clinics, intent, writes, first_day


class Timeline:
    """Writes the records in time order: the past as fast as it is taken, then each record at its moment."""

    def __init__(self, writes: list[Write], systems: list[SourceSystem], start: float, clock: Callable[[], float] = time.time) -> None:
        self._writes = writes
        self._systems = systems
        self.start = start  # records up to here are the past
        self._clock = clock
        self._next = 0
        self.history_written_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-timeline", daemon=True)

    @property
    def written_up_to(self) -> float | None:
        return self._writes[self._next - 1].at if self._next else None

    @property
    def still_to_happen(self) -> int:
        return len(self._writes) - self._next

    def begin(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self._clock()
            catching_up = self._next < len(self._writes) and self._writes[self._next].at <= self.start
            until = min(now, self._writes[self._next].at + HISTORY_STEP_S) if catching_up else now
            held = False
            while self._next < len(self._writes) and self._writes[self._next].at <= until:
                if self._writes[self._next].apply() is False:
                    held = True  # e.g. a log rotation waiting for the collector: try again shortly
                    break
                self._next += 1
            for system in self._systems:
                system.tick(now, catching_up)
            if self.history_written_at is None and (self._next == len(self._writes) or self._writes[self._next].at > self.start):
                self.history_written_at = now
            self._stop.wait(0.5 if held or not catching_up else 0.02)
