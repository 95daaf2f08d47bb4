"""A drop-in clinic's ticket dispenser and "assessment done" panel, on simulated serial ports.

Both are `firmware_bridge.simulator.SimulatedDevice`s on a pseudo-terminal (a pty pair, its device side
symlinked to `serial/dispenser` and `serial/panel`), speaking firmware protocol v1 to the real bridge
(`vardkoll bridge run`) in the clinic's collector process. A drop-in patient takes a ticket (input 1:
listed here, 2: listed elsewhere); when a nurse or doctor has assessed them, they press the panel's
button for their profession and the form, with the ticket number. An assessment without a ticket is a
press without one (the server counts it as an assessment without contact). The devices keep every press
until the bridge acknowledges it, so a bridge that is stopped or killed loses none.

The past weeks are pressed with their recorded times (as if the devices had kept them); the pump keeps
at most `IN_FLIGHT` presses unacknowledged per device, so nothing floods the line.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from vardkoll.firmware_bridge.simulator import SimulatedDevice

from ..intent import IntendedEvents, pseudonym
from . import Event, cases_of, epoch

PROFESSIONS = ("doctor", "nurse", "physiotherapist", "psychologist", "occupational_therapist", "other_licensed")
FORMS = ("physical", "phone", "video", "chat", "letter", "home")
IN_FLIGHT = 24
DISPENSER, PANEL = "biljett-entre-1", "panel-mottagning-1"


def panel_input(profession: str, form: str) -> int:
    return 1 + PROFESSIONS.index(profession) * len(FORMS) + FORMS.index(form)


class SerialDevices:
    name = "ticket dispenser and button panel (serial, firmware bridge)"

    def __init__(self, unit: str, folder: Path, intent: IntendedEvents, zone: ZoneInfo) -> None:
        self.unit, self.folder, self.intent, self.zone = unit, folder, intent, zone
        (folder / "serial").mkdir(parents=True, exist_ok=True)
        self.dispenser_port, self.panel_port = folder / "serial" / "dispenser", folder / "serial" / "panel"
        self.dispenser = SimulatedDevice(DISPENSER, unit, "ticket_dispenser", self.dispenser_port, store_id=0x5EED0101)
        self.panel = SimulatedDevice(PANEL, unit, "button_panel", self.panel_port, store_id=0x5EED0102)
        self._queues: dict[str, deque[tuple[int, int, int, dict]]] = {DISPENSER: deque(), PANEL: deque()}
        self._lock = threading.Lock()
        self._tickets = 0
        self._unlinked = 0

    def bridge_config(self) -> str:
        inputs = "\n".join(f'inputs.{panel_input(p, f)} = {{ event = "care.assessed", profession = "{p}", form = "{f}" }}' for p in PROFESSIONS for f in FORMS)
        return f"""# Written by `vardkoll demo`: the clinic's two serial devices (docs/firmware-protocol.md).
ports = ["{self.dispenser_port}", "{self.panel_port}"]
timezone = "Europe/Stockholm"
reopen_initial_s = 0.2
reopen_max_s = 2

[[devices]]
device_id = "{DISPENSER}"
unit = "{self.unit}"
kind = "ticket_dispenser"
inputs.1 = {{ event = "care.contact", channel = "visit", listed = true }}
inputs.2 = {{ event = "care.contact", channel = "visit", listed = false }}

[[devices]]
device_id = "{PANEL}"
unit = "{self.unit}"
kind = "button_panel"
ticket_source = "{DISPENSER}"
{inputs}
"""

    def connectors(self) -> str:
        return ""  # the bridge feeds the outbox itself

    def start(self) -> None:
        self.dispenser.plug()
        self.panel.plug()

    def plan(self, events: list[Event]) -> list[tuple[float, Callable[[], bool | None]]]:
        writes: list[tuple[float, Callable[[], bool | None]]] = []
        for case in cases_of(events):
            if case.contacts and case.contacts[0]["channel"] != "visit":
                continue  # phoned or wrote in: not at this desk
            ticket = 0
            if case.contacts:
                self._tickets += 1
                ticket = self._tickets
                contact = case.contacts[0]
                writes.append((epoch(contact), lambda t=ticket, c=contact: self._press(DISPENSER, 1 if c["listed"] else 2, t, c)))
            for assessed in case.assessed:
                writes.append((epoch(assessed), lambda t=ticket, a=assessed: self._press(PANEL, panel_input(a["profession"], a["form"]), t, a)))
        return writes

    def _press(self, device: str, input_id: int, ticket: int, event: Event) -> None:
        with self._lock:
            self._queues[device].append((input_id, ticket, round(epoch(event) * 1000), event))
        self.tick(0.0, False)

    def tick(self, now: float, catching_up: bool) -> bool:
        """Press what is queued while the device has room; the intended event is written with the press."""
        for name, device in ((DISPENSER, self.dispenser), (PANEL, self.panel)):
            while True:
                with self._lock:
                    if not self._queues[name] or len(device.unacked) >= IN_FLIGHT:
                        break
                    input_id, ticket, at_ms, event = self._queues[name].popleft()
                local_seq = device.press(input_id, ticket, recorded_at_ms=at_ms)
                at = datetime.fromtimestamp(at_ms / 1000, timezone.utc)
                if name == DISPENSER:
                    case = pseudonym("case", f"{DISPENSER}/{ticket}")
                    self.intent.add(self.unit, "bridge", f"{name}/{local_seq}", "care.contact", at, case=case, listed=event["listed"], channel="visit")
                else:
                    case = pseudonym("case", f"{DISPENSER}/{ticket}" if ticket else f"{PANEL}/unlinked/{local_seq}")
                    self.intent.add(
                        self.unit, "bridge", f"{name}/{local_seq}", "care.assessed", at, case=case, profession=event["profession"], form=event["form"]
                    )
        return True

    @property
    def waiting(self) -> int:
        with self._lock:
            queued = sum(len(q) for q in self._queues.values())
        return queued + len(self.dispenser.unacked) + len(self.panel.unacked)

    def close(self) -> None:
        self.dispenser.unplug()
        self.panel.unplug()
