"""A clinic's phone queue in Asterisk: `queue_log` lines as app_queue writes them, rotated weekly.

ENTERQUEUE when a call enters the queue, CONNECT when a nurse answers, ABANDON when the caller hangs
up, EXITWITHKEY (key 1) when the caller asks to be called back. Callers refused by a full or closed
queue are written by the dialplan to `refused_log` (Asterisk itself logs nothing for them). The
callbacks themselves happen in the callback system (`callback_export.py`), which knows the call by
Asterisk's uniqueid.

`queue_log` is rotated as logrotate does it (renamed to `queue_log-YYYYMMDD`, a new file created) at
local midnight before each Monday. While the history streams in, a week is written and rotated in well
under a second, often more than once between two of the collector's polls: the connector finds the file it
read last by its inode, reads its rest and then every week rotated after it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from ..intent import IntendedEvents, pseudonym
from . import Call, Event, calls_of, epoch

CONNECTOR = "asterisk_queue_log"
DEFAULT_QUEUE = "vardcentral"


class AsteriskQueue:
    name = "Asterisk queue_log"

    def __init__(self, unit: str, folder: Path, intent: IntendedEvents, zone: ZoneInfo) -> None:
        self.unit, self.folder, self.intent, self.zone = unit, folder, intent, zone
        self.queue_log, self.refused_log = folder / "queue_log", folder / "refused_log"
        folder.mkdir(parents=True, exist_ok=True)
        self.queue_log.touch()
        self.refused_log.touch()
        self.call_ids: dict[str, str] = {}  # the generator's call → Asterisk's uniqueid
        self.rotations = 0

    def connectors(self) -> str:
        return f"""
[[connectors]]
type = "asterisk_queue_log"
path = "{self.queue_log}"
refused_log = "{self.refused_log}"
callback_keys = ["1"]
"""

    def plan(self, events: list[Event]) -> list[tuple[float, Callable[[], bool | None]]]:
        writes: list[tuple[float, Callable[[], bool | None]]] = []
        calls = sorted(calls_of(events), key=lambda c: epoch(c.first))
        for number, call in enumerate(calls, start=1):
            self.call_ids[call.call] = f"{int(epoch(call.first))}.{number}"
            for kind, event in call.events.items():
                line = self._line(call, kind, event)
                if line is not None:
                    writes.append((epoch(event), lambda c=call, k=kind, e=event, written=line: self._write(c, k, e, written)))
        if writes:
            first, last = min(w[0] for w in writes), max(w[0] for w in writes)
            for monday in _mondays(datetime.fromtimestamp(first, self.zone).date(), datetime.fromtimestamp(last, self.zone).date()):
                midnight = datetime.combine(monday, datetime.min.time(), self.zone).timestamp()
                writes.append((midnight, lambda day=monday: self._rotate(day)))
        return writes

    def _line(self, call: Call, kind: str, event: Event) -> tuple[Path, str] | None:
        when = int(epoch(event))
        call_id = self.call_ids[call.call]
        queue = call.events.get("call.offered", {}).get("queue") or DEFAULT_QUEUE
        if kind == "call.offered":
            return self.queue_log, f"{when}|{call_id}|{queue}|NONE|ENTERQUEUE||dold|1"
        if kind == "call.answered":
            return self.queue_log, f"{when}|{call_id}|{queue}|Local/mottagning@agenter|CONNECT|{max(0, when - int(epoch(call.first)))}|{call_id}1|3"
        if kind == "call.abandoned":
            return self.queue_log, f"{when}|{call_id}|{queue}|NONE|ABANDON|1|1|{max(0, when - int(epoch(call.first)))}"
        if kind == "call.callback_booked":
            return self.queue_log, f"{when}|{call_id}|{queue}|NONE|EXITWITHKEY|1|1|{max(0, when - int(epoch(call.first)))}"
        if kind == "call.rejected":
            status = "FULL" if event["reason"] == "queue_full" else "CLOSED"
            return self.refused_log, f"{when}|{call_id}|{queue}|{status}"
        return None  # callbacks made: the callback system's export

    def _write(self, call: Call, kind: str, event: Event, line: tuple[Path, str]) -> None:
        path, text = line
        with path.open("a") as log_file:
            log_file.write(text + "\n")
        at = datetime.fromtimestamp(int(epoch(event)), self.zone)
        ref = {"call": pseudonym("call", self.call_ids[call.call])}
        if kind == "call.offered":
            self.intent.add(self.unit, CONNECTOR, self.call_ids[call.call], kind, at, queue=call.events[kind].get("queue") or DEFAULT_QUEUE, **ref)
        elif kind == "call.rejected":
            self.intent.add(self.unit, CONNECTOR, self.call_ids[call.call], kind, at, reason=event["reason"], **ref)
        else:
            self.intent.add(self.unit, CONNECTOR, self.call_ids[call.call], kind, at, **ref)

    def _rotate(self, day: date) -> bool:
        rotated = self.folder / f"queue_log-{day:%Y%m%d}"
        self.queue_log.rename(rotated)
        self.queue_log.touch()
        self.rotations += 1
        return True

    def tick(self, now: float, catching_up: bool) -> bool:
        return True

    def close(self) -> None:
        pass


def _mondays(first: date, last: date) -> list[date]:
    day = first + timedelta(days=1)
    found = []
    while day <= last:
        if day.weekday() == 0:
            found.append(day)
        day += timedelta(days=1)
    return found
