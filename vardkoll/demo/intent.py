"""What the simulated systems meant to convey: the wire events a connector should make of each record.

Every simulated system writes a record (a queue_log line, an export row, a FHIR resource, a button
press) and, beside it, the events it intends that record to become, to `intended-events.jsonl`. Ids
and pseudonyms there are made here (a plain hash of the source reference), not by the collector (a
keyed hash with the device's secret), so they differ from the server's; the figures do not, because
both map each source reference to one pseudonym. `vardkoll replay` over the file therefore gives the
figures the API shows once the edge has delivered everything: the demo's proof that nothing was lost.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEF"  # no digits: no run of digits can look like a personal number


def pseudonym(kind: str, reference: str) -> str:
    """A stable stand-in for the collector's keyed pseudonym of `reference` (distinct references, distinct values)."""
    digest = int.from_bytes(hashlib.sha256(f"{kind}\x1f{reference}".encode()).digest()[:15], "big")
    return kind[0] + "".join(_LETTERS[(digest >> (5 * i)) & 31] for i in range(20))


class IntendedEvents:
    """The JSON-lines file of intended events; an id is written once however often its record is rewritten."""

    def __init__(self, path: Path, unit_devices: dict[str, str]) -> None:
        self.path = path
        self._devices = unit_devices
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._file = path.open("ab")
        self.count_by_unit: dict[str, int] = {}

    def add(self, unit: str, connector: str, source_key: str, kind: str, at: datetime, **fields: Any) -> None:
        """One event as connector `connector` makes it of the record known as `source_key`."""
        event_id = pseudonym("event", f"{unit}\x1f{connector}\x1f{source_key}\x1f{kind}")
        event = {"v": 1, "id": event_id, "type": kind, "unit": unit, "device": self._devices[unit], "at": at.isoformat(), **fields}
        with self._lock:
            if event_id in self._seen:
                return
            self._seen.add(event_id)
            self._file.write(orjson.dumps(event) + b"\n")
            self._file.flush()
            self.count_by_unit[unit] = self.count_by_unit.get(unit, 0) + 1

    def close(self) -> None:
        with self._lock:
            self._file.close()
