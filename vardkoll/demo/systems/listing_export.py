"""The listing service's nightly export: one CSV file per day at 02:00, one row per doctor.

Columns: the doctor's HSA-id, how many patients are listed with them, whether they are active, and how
many of those have them as named fixed doctor; one row without a doctor holds the patients listed at
the clinic without one. Written atomically (a hidden temporary file, then a rename).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from datetime import datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from ..intent import IntendedEvents, pseudonym
from . import Event, by_type, epoch

CONNECTOR = "listing_export"


def doctor_hsa_id(unit: str, doctor: str) -> str:
    """A doctor's HSA-id in the clinic's region (the generator's doctor pseudonym, as letters and digits)."""
    return unit.split("-", 1)[0] + "-" + doctor.replace("-", "").upper()[:24]


class ListingExport:
    name = "listing export (CSV)"

    def __init__(self, unit: str, folder: Path, intent: IntendedEvents, zone: ZoneInfo) -> None:
        self.unit, self.folder, self.intent, self.zone = unit, folder, intent, zone
        folder.mkdir(parents=True, exist_ok=True)

    def connectors(self) -> str:
        return f"""
[[connectors]]
type = "listing_export"
folder = "{self.folder}"
pattern = "*.csv"
settle_s = 0
snapshot_time = "02:00:00"
[connectors.columns]
doctor = "lakare_hsa_id"
listed = "listade"
active = "aktiv"
named_doctor = "med_fast_lakare"
"""

    def plan(self, events: list[Event]) -> list[tuple[float, Callable[[], bool | None]]]:
        return [(epoch(snapshot), lambda s=snapshot: self._write(s)) for snapshot in by_type(events, "listing.snapshot")]

    def _write(self, snapshot: Event) -> None:
        day = datetime.fromisoformat(snapshot["at"]).astimezone(self.zone).date()
        rows: list[tuple[str, int, bool, int]] = []
        for entry in snapshot.get("doctors") or []:
            rows.append((doctor_hsa_id(self.unit, entry["doctor"]), entry["listed"], entry.get("active", True), entry["listed"]))
        named_in_rows = sum(row[3] for row in rows)
        rows.append(("", snapshot["listed"] - named_in_rows, True, snapshot["named_doctor"] - named_in_rows))
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(["lakare_hsa_id", "listade", "aktiv", "med_fast_lakare"])
        for hsa, listed, active, named in rows:
            writer.writerow([hsa, listed, "ja" if active else "nej", named])
        name = f"listning-{day.isoformat()}.csv"
        content = out.getvalue().encode("utf-8")
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(content)
        os.replace(temporary, self.folder / name)
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        doctors = [{"doctor": pseudonym("practitioner", hsa), "listed": listed, "active": active} for hsa, listed, active, _ in rows if hsa]
        at = datetime.combine(day, datetime.strptime("02:00", "%H:%M").time(), self.zone)
        self.intent.add(
            self.unit,
            CONNECTOR,
            f"{name}\x1f{digest}",
            "listing.snapshot",
            at,
            listed=snapshot["listed"],
            named_doctor=snapshot["named_doctor"],
            doctors=doctors,
        )

    def tick(self, now: float, catching_up: bool) -> bool:
        return True

    def close(self) -> None:
        pass
