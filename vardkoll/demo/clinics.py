"""Simulated clinics for the demo: four weeks of history at once, then today's events as they happen."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from vardkoll.simulation import generate

from .collectors import DemoCollector

STOCKHOLM = ZoneInfo("Europe/Stockholm")
HISTORY_DAYS = 27


class SimulatedClinics:
    def __init__(self, units: int, port: int, mqtt_v5: bool, seed: int = 7, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._now = now
        today = now().astimezone(STOCKHOLM).date()
        generated = generate(seed=seed, units=units, days=HISTORY_DAYS + 1, start_date=today - timedelta(days=HISTORY_DAYS))
        # Each clinic's collector publishes under its own device id and stamps it on the events.
        events = sorted(({k: v for k, v in e.items() if k != "device"} for e in generated), key=_instant)
        self.units = sorted({event["unit"] for event in events})
        self._collectors = {unit: DemoCollector(unit, f"demo-{unit[-4:].lower()}", port, mqtt_v5) for unit in self.units}
        self._pending = events
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-clinics", daemon=True)

    @property
    def first_day(self) -> date:
        return _instant(self._pending[0]).astimezone(STOCKHOLM).date() if self._pending else self._now().date()

    def start(self) -> None:
        for collector in self._collectors.values():
            collector.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for collector in self._collectors.values():
            collector.stop()

    def status(self) -> dict[str, int]:
        return {
            "acknowledged": sum(c.acknowledged for c in self._collectors.values()),
            "waiting": sum(c.waiting for c in self._collectors.values()),
            "scheduled": len(self._pending),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            self._release_due()
            for collector in self._collectors.values():
                collector.flush()
            self._stop.wait(1.0)

    def _release_due(self) -> None:
        now = self._now()
        cut = 0
        while cut < len(self._pending) and _instant(self._pending[cut]) <= now:
            cut += 1
        due, self._pending = self._pending[:cut], self._pending[cut:]
        per_unit: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in due:
            per_unit[event["unit"]].append(event)
        for unit, events in per_unit.items():
            self._collectors[unit].send(events)


def _instant(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])
