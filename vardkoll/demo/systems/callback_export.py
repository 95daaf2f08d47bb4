"""A callback system's statistics export (TeleQ-like): one CSV file per day, one row per call.

A row holds the call's state as the system knows it when the file is written: when it came in, its
queue, when a callback was booked and promised, when it was made, and the outcome in Swedish
(besvarad, avbruten, bokad, nådd, ej nådd, kö full, stängd). The day's file is written again as calls
change (atomically: a temporary name, then a rename); a call called back the next day is in both days'
files. At a clinic whose queue is Asterisk the export holds only the calls that asked for a callback,
known by Asterisk's uniqueid, so both systems' events name the same call.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from ..intent import IntendedEvents, pseudonym
from . import Call, Event, calls_of, epoch, instant

CONNECTOR = "callback_csv"
HEADER = ["samtals_id", "inkommet", "ko", "bokad", "utlovad_tid", "uppringd", "besvarad", "utfall"]
EXPORT_EVERY_S = 20.0  # in real time; while catching up, after every step


class CallbackExport:
    name = "callback system export (CSV)"

    def __init__(
        self, unit: str, folder: Path, intent: IntendedEvents, zone: ZoneInfo, call_ids: dict[str, str] | None = None, callbacks_only: bool = False
    ) -> None:
        self.unit, self.folder, self.intent, self.zone = unit, folder, intent, zone
        folder.mkdir(parents=True, exist_ok=True)
        self._call_ids = call_ids  # the phone system's ids of the calls, when another system owns the queue
        self._callbacks_only = callbacks_only
        self._released: dict[str, dict[str, Event]] = {}  # call → its events written so far
        self._days: defaultdict[date, set[str]] = defaultdict(set)  # day → calls in that day's file
        self._dirty: set[date] = set()
        self._written_at = 0.0

    def connectors(self) -> str:
        # Beside Asterisk the export's call id is Asterisk's uniqueid: the collector links callbacks by it.
        linked = '\nqueue_call_id = "samtals_id"' if self._call_ids is not None else ""
        return f"""
[[connectors]]
type = "callback_csv"
folder = "{self.folder}"
pattern = "*.csv"
settle_s = 0
[connectors.columns]
call_id = "samtals_id"
call_time = "inkommet"
queue = "ko"
callback_booked = "bokad"
callback_slot = "utlovad_tid"
callback_made = "uppringd"
answered_time = "besvarad"
outcome = "utfall"{linked}
"""

    def plan(self, events: list[Event]) -> list[tuple[float, Callable[[], bool | None]]]:
        writes: list[tuple[float, Callable[[], bool | None]]] = []
        for call in calls_of(events):
            if self._callbacks_only and "call.callback_booked" not in call.events:
                continue
            for kind, event in call.events.items():
                if self._callbacks_only and kind != "call.callback_booked" and kind != "call.callback_done":
                    continue  # the queue's own system has the call; the callback system sees it when booked
                writes.append((epoch(event), lambda c=call, k=kind, e=event: self._change(c, k, e)))
        return writes

    def _change(self, call: Call, kind: str, event: Event) -> None:
        released = self._released.setdefault(call.call, {})
        released[kind] = event
        if self._callbacks_only and "call.offered" in call.events:
            released["call.offered"] = call.events["call.offered"]
        day = instant(event).astimezone(self.zone).date()
        self._days[day].add(call.call)
        self._dirty.add(day)
        first_day = instant(call.first).astimezone(self.zone).date()
        if first_day != day:
            self._dirty.add(first_day)

    def tick(self, now: float, catching_up: bool) -> bool:
        if self._dirty and (catching_up or now - self._written_at >= EXPORT_EVERY_S):
            for day in sorted(self._dirty):
                self._write_day(day)
            self._dirty.clear()
            self._written_at = now
        return True

    def _write_day(self, day: date) -> None:
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADER)
        for call in sorted(self._days[day]):
            writer.writerow(self._row(call))
        path = self.folder / f"ateruppringningar-{day.isoformat()}.csv"
        temporary = self.folder / f".{path.name}.tmp"
        temporary.write_text(out.getvalue(), encoding="utf-8")
        os.replace(temporary, path)

    def _time(self, event: Event | None, field: str = "at") -> str:
        if event is None or event.get(field) is None:
            return ""
        return datetime.fromisoformat(event[field]).astimezone(self.zone).isoformat()

    def _row(self, call: str) -> list[str]:
        events = self._released[call]
        call_id = self._call_ids[call] if self._call_ids is not None else call
        ref = {"call": pseudonym("call", call_id)}
        add = lambda kind, at, **fields: self.intent.add(self.unit, CONNECTOR, call_id, kind, datetime.fromisoformat(at), **ref, **fields)  # noqa: E731
        rejected = events.get("call.rejected")
        if rejected is not None:
            outcome = "kö full" if rejected["reason"] == "queue_full" else "stängd"
            add("call.rejected", self._time(rejected), reason=rejected["reason"])
            return [call_id, self._time(rejected), "", "", "", "", "", outcome]
        offered = events["call.offered"] if "call.offered" in events else None
        if offered is None:
            return [call_id, "", "", "", "", "", "", ""]  # not reachable: a row starts with its call
        queue = offered.get("queue") or ""
        call_time = self._time(offered)
        add("call.offered", call_time, **({"queue": queue} if queue else {}))
        answered, abandoned = events.get("call.answered"), events.get("call.abandoned")
        booked, done = events.get("call.callback_booked"), events.get("call.callback_done")
        outcome = ""
        if answered is not None:
            outcome = "besvarad"
            add("call.answered", self._time(answered))
        elif abandoned is not None:
            outcome = "avbruten"
            add("call.abandoned", call_time)
        if booked is not None:
            outcome = outcome or "bokad"
            slot = self._time(booked, "slot")
            add("call.callback_booked", self._time(booked), **({"slot": slot} if slot else {}))
        if done is not None:
            reached = done.get("reached", True)
            outcome = "nådd" if reached else "ej nådd"
            add("call.callback_done", self._time(done), reached=reached)
        return [call_id, call_time, queue, self._time(booked), self._time(booked, "slot"), self._time(done), self._time(answered), outcome]

    def close(self) -> None:
        for day in sorted(self._dirty):
            self._write_day(day)
        self._dirty.clear()
