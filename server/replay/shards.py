"""Replay in worker processes that each own some of the units.

Units share nothing: every rule of SPEC 2, de-duplication included ("the first in file order wins", per
unit), works on one unit's events alone. So the main process reads the archive block by block and hands
every line to the worker that owns the line's unit. Each worker parses its lines and applies them, in
file order, to its own `MetricEngine`, exactly as a replay in one process does, and at the end computes
its units' figures. The main process only routes lines, then gathers the figures, the rejected lines
(with their line numbers) and the count of duplicates. Parsing, applying and the figures all run in
parallel; nothing is merged, so the result is the one-process result by construction.

Routing reads a line's unit from its raw bytes, without parsing it (`units_of_lines`). That is sound
when the line holds no backslash and the bytes `"unit"` exactly once: without escapes every `"` opens
or closes a string, so that `"unit"` is a key (when a `:` follows) or the line is not JSON; if the key
is nested rather than the event's own, the event has no top-level `unit` and is rejected by whoever
parses it. Any other line is parsed in the main process to learn its unit, or why it is rejected.
A worker refuses an event of a unit it does not own rather than count it where it does not belong.

Units go to workers as they first appear, each to the worker with the fewest lines so far. An archive
of a single unit therefore gains nothing from the workers; a region's archive has dozens of units.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import pickle
import re
import traceback
from array import array
from collections import Counter
from collections.abc import Container, Mapping
from datetime import datetime
from itertools import compress, repeat
from multiprocessing.connection import Connection, wait
from queue import Empty, Full
from typing import Any, Callable, Iterable

from vardkoll.protocol import EventRejected, parse_event_line

from ..metrics import Applied, MetricEngine, Period, UnitConfig
from .blocks import parse_lines

MAX_WORKERS = 254  # a line's owner is one byte; 255 means nobody
_NOBODY = 255
_IN_FLIGHT = 3  # blocks queued for a worker before the main process waits for it to catch up
_UNIT_KEY = b'"unit"'
_UNIT_VALUE = re.compile(rb'"unit"[ \t\r]*:[ \t\r]*"([^"\\\n]*)"')


def conflict_reason(event_id: str) -> str:
    """Why a line is rejected when its id was already used by a different event of the unit."""
    return f"event id '{event_id}' was already used by a different event of this unit"


def units_of_lines(block: bytes, lines: list[bytes] | None = None) -> list[bytes] | None:
    """The unit of each line of `block` (lines joined by "\\n"; `lines`, when given, is
    `block.split(b"\\n")`) as written, when the block holds no backslash and every line the bytes
    `"unit"` exactly once, followed by `:` and a plain string; else None. All in C: `bytes.count` of
    `"unit"` mapped over the lines (a third of the time of marking them in a copy of the block)."""
    if b"\\" in block or b"\x00" in block:
        return None
    lines = block.split(b"\n") if lines is None else lines
    if any(map(_not_once, map(bytes.count, lines, repeat(_UNIT_KEY)))):
        return None
    units = _UNIT_VALUE.findall(block)  # at most one per line, as each line has one "unit"
    return units if len(units) == len(lines) else None


_not_once = (1).__ne__


def unit_of_line(line: bytes) -> bytes | EventRejected | None:
    """The unit of one line as written (None for a blank line), or why the line is rejected."""
    if b"\\" not in line and line.count(_UNIT_KEY) == 1:
        found = _UNIT_VALUE.search(line)
        if found is not None:
            return found[1]
    if not line.strip():
        return None
    try:
        return parse_event_line(line).unit.encode()
    except EventRejected as exc:
        return exc


def portable(config: UnitConfig) -> UnitConfig:
    """The same settings in containers that pickle (a mapping proxy does not); raises here, in the main
    process, if they still do not."""
    changes = {
        field.name: dict(value)
        for field in dataclasses.fields(config)
        if isinstance(value := getattr(config, field.name), Mapping) and not isinstance(value, dict)
    }
    config = dataclasses.replace(config, **changes) if changes else config
    pickle.dumps(config)
    return config


# --- a worker -----------------------------------------------------------------------------------------


class MisroutedEvent(RuntimeError):
    """A worker got an event of a unit it does not own: a bug in routing, never a property of the data."""


class WorkerFailed(RuntimeError):
    """A worker process raised or died; the message holds its traceback or exit code."""


def apply_lines(engine: MetricEngine, owned: Container[str], data: bytes, numbers: Iterable[int], rejected: list[tuple[int, str]]) -> int:
    """Parse lines (joined by "\\n", numbered by `numbers`) and apply their events in order, as a replay
    in one process does; rejected lines and re-used ids go to `rejected`. Returns the duplicates."""
    parsed = parse_lines(data, numbers)
    rejected.extend(parsed.rejected)
    duplicates = 0
    states, duplicate, conflict = engine.units, Applied.DUPLICATE, Applied.CONFLICT
    for number, event in zip(parsed.event_lines, parsed.events):
        state = states.get(event.unit)
        if state is None:
            if event.unit not in owned:
                raise MisroutedEvent(f"line {number}: an event of unit {event.unit} reached a worker that does not own it")
            state = engine.state(event.unit)
        outcome = state.apply(event)
        if outcome is duplicate:
            duplicates += 1
        elif outcome is conflict:
            rejected.append((number, conflict_reason(event.id)))
    return duplicates


# A worker's engine, kept until the process ends: a worker process exits without freeing what is
# still referenced, and freeing a million events' state one object at a time cost each worker about
# half a second of CPU, after the figures were sent and while the main process waited for it to stop.
_KEPT_UNTIL_EXIT: list[MetricEngine] = []


def _serve(inbox: Any, outbox: Connection) -> None:
    """A worker's loop over ("lines", {unit: config}, lines, numbers), ("span",),
    ("figures", period, as_of) and None (stop)."""
    gc.disable()  # millions of small objects and no reference cycles, as in the main process
    configs: dict[str, UnitConfig] = {}
    engine = MetricEngine(configs.__getitem__)
    _KEPT_UNTIL_EXIT.append(engine)
    rejected: list[tuple[int, str]] = []
    duplicates = 0
    try:
        while (message := _next(inbox)) is not None:
            kind = message[0]
            if kind == "lines":
                _, new_units, data, numbers = message
                configs.update(new_units)
                duplicates += apply_lines(engine, configs, data, numbers, rejected)
            elif kind == "span":
                span = engine.span()
                outbox.send(("span", None if span is None else (span.start, span.end)))
            elif kind == "figures":
                _, period, as_of = message
                outbox.send(("figures", engine.figures(period, as_of) if period is not None else [], rejected, duplicates))
    except BaseException:  # noqa: BLE001 - the main process raises it as WorkerFailed
        outbox.send(("error", traceback.format_exc()))


def _next(inbox: Any) -> tuple | None:
    """The next message; None (stop) once the main process is gone, killed without a word."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            return inbox.get(timeout=2)
        except Empty:
            if parent is not None and not parent.is_alive():
                return None


# --- the main process -----------------------------------------------------------------------------------


def stop_helper_processes() -> None:
    """End the forkserver and the resource tracker that multiprocessing started for the workers, and
    wait for them: left alone they outlive `vardkoll replay` for a moment and stay in its process group
    (a caller waiting for the group to empty waits for them). multiprocessing has no public call for
    this; both `_stop`s exist since Python 3.8 and only ever start afresh on the next use."""
    from multiprocessing import forkserver, resource_tracker

    for helper in (getattr(forkserver, "_forkserver", None), getattr(resource_tracker, "_resource_tracker", None)):
        stop = getattr(helper, "_stop", None)
        if stop is not None:
            stop()


class UnitWorkers:
    """Worker processes that each own some units. Feed every block with `route`, then ask `span()` and
    `figures(...)`; `rejected` and `duplicates` are complete after `figures`. Leaving the context stops
    the workers (at once when leaving on an exception)."""

    def __init__(self, workers: int, config_of: Callable[[str], UnitConfig] | None = None) -> None:
        workers = max(1, min(workers, MAX_WORKERS))
        self._config_of = config_of or (lambda unit: UnitConfig())
        self._owner: dict[bytes, int] = {}  # unit as written -> worker
        self._lines = [0] * workers  # lines sent to each worker so far
        self._new_units: list[dict[str, UnitConfig]] = [{} for _ in range(workers)]  # not yet told
        self._selectors = [bytes(int(owner == worker) for owner in range(256)) for worker in range(workers)]
        self.rejected: list[tuple[int, str]] = []
        self.duplicates = 0
        context = multiprocessing.get_context("forkserver")
        self._inboxes = [context.Queue(_IN_FLIGHT) for _ in range(workers)]
        pipes = [context.Pipe(duplex=False) for _ in range(workers)]
        self._outboxes = [receive for receive, _ in pipes]
        self._processes = [
            context.Process(target=_serve, args=(inbox, send), name=f"vardkoll-replay-{index}", daemon=True)
            for index, (inbox, (_, send)) in enumerate(zip(self._inboxes, pipes))
        ]
        try:
            for process in self._processes:
                process.start()
        finally:
            for _, send in pipes:
                send.close()

    def __enter__(self) -> "UnitWorkers":
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        # Each step in its own method: a loop variable left in this frame would keep a queue alive.
        self._close_pipes(self._stop_workers(at_once=kind is not None))
        # The queues' semaphores unregister from the resource tracker when freed: free them first.
        self._inboxes.clear()
        self._processes.clear()
        gc.collect()
        stop_helper_processes()

    def _stop_workers(self, at_once: bool) -> list[bool]:
        """Ask each worker to stop (or terminate it at once); which stopped cleanly."""
        for inbox, process in zip(self._inboxes, self._processes):
            if not at_once and process.is_alive():
                try:
                    inbox.put(None, timeout=1)
                except Full:
                    pass
        stopped_cleanly = []
        for process in self._processes:
            process.join(timeout=0 if at_once else 5)
            stopped_cleanly.append(not process.is_alive() and process.exitcode == 0)
            if process.is_alive():
                process.terminate()
                process.join()
        return stopped_cleanly

    def _close_pipes(self, stopped_cleanly: list[bool]) -> None:
        for inbox, stopped in zip(self._inboxes, stopped_cleanly):
            if not stopped:
                inbox.cancel_join_thread()  # never wait for a pipe nobody reads any more
            inbox.close()
            if stopped:
                inbox.join_thread()  # its worker read everything: the feeder thread ends at once
        for outbox in self._outboxes:
            outbox.close()

    # routing

    def route(self, block: bytes, first_line: int) -> None:
        """Send every line of a block (whole lines joined by "\\n", the first numbered `first_line`) to the
        worker that owns its unit."""
        lines = block.split(b"\n")
        units = units_of_lines(block, lines)
        if units is not None:
            new = set(units).difference(self._owner)
            if new:
                self._assign({unit: units.count(unit) for unit in new})
            owners = bytes(map(self._owner.__getitem__, units))
        else:
            owners = self._owners_line_by_line(lines, first_line)
        numbers = range(first_line, first_line + len(lines))
        for worker, selector in enumerate(self._selectors):
            mine = owners.translate(selector)  # 1 for this worker's lines, 0 for the others
            count = mine.count(1)
            if count or self._new_units[worker]:
                self._lines[worker] += count
                message = ("lines", self._new_units[worker], b"\n".join(compress(lines, mine)), array("q", compress(numbers, mine)))
                self._new_units[worker] = {}
                self._send(worker, message)

    def _owners_line_by_line(self, lines: list[bytes], first_line: int) -> bytes:
        """The owner of each line of a block that `units_of_lines` could not route: a blank line and a
        line rejected here go to nobody."""
        units: list[bytes | None] = []
        for number, line in enumerate(lines, start=first_line):
            unit = unit_of_line(line)
            if isinstance(unit, EventRejected):
                self.rejected.append((number, unit.reason))
                unit = None
            units.append(unit)
        new = Counter(unit for unit in units if unit is not None and unit not in self._owner)
        if new:
            self._assign(new)
        return bytes(_NOBODY if unit is None else self._owner[unit] for unit in units)

    def _assign(self, counts: Mapping[bytes, int]) -> None:
        """Give new units, the busiest first, each to the worker with the fewest lines."""
        load = list(self._lines)
        for unit in sorted(counts, key=lambda unit: (-counts[unit], unit)):
            worker = min(range(len(load)), key=load.__getitem__)
            load[worker] += counts[unit]
            self._owner[unit] = worker
            name = unit.decode("utf-8", "surrogateescape")
            self._new_units[worker][name] = portable(self._config_of(name))

    def _send(self, worker: int, message: tuple | None) -> None:
        while True:
            try:
                self._inboxes[worker].put(message, timeout=0.5)
                return
            except Full:
                self._check(worker)

    def _check(self, worker: int) -> None:
        """Raise WorkerFailed if the worker has stopped."""
        process = self._processes[worker]
        if process.is_alive():
            return
        answer = self._receive(worker)
        if answer is not None and answer[0] == "error":
            raise WorkerFailed(f"replay worker {worker} failed:\n{answer[1]}")
        raise WorkerFailed(f"replay worker {worker} stopped (exit code {process.exitcode})")

    def _receive(self, worker: int) -> tuple | None:
        """The worker's next answer if one is waiting; None if not, or if the worker is gone."""
        outbox = self._outboxes[worker]
        try:
            return outbox.recv() if outbox.poll() else None
        except (EOFError, OSError):
            return None

    # results

    def _ask(self, message: tuple) -> list[tuple]:
        """Send `message` to every worker; their answers, in worker order."""
        for worker in range(len(self._inboxes)):
            self._send(worker, message)
        answers: dict[int, tuple] = {}
        while len(answers) < len(self._outboxes):
            pending = [index for index in range(len(self._outboxes)) if index not in answers]
            ready = wait([self._outboxes[index] for index in pending] + [self._processes[index].sentinel for index in pending])
            for index in pending:
                answer = self._receive(index)
                if answer is None:
                    if self._processes[index].sentinel in ready or self._outboxes[index] in ready:
                        self._check(index)
                elif answer[0] == "error":
                    raise WorkerFailed(f"replay worker {index} failed:\n{answer[1]}")
                else:
                    answers[index] = answer
        return [answers[index] for index in range(len(self._outboxes))]

    def span(self) -> Period | None:
        """The local dates the applied events cover, across all units (after the last `route`)."""
        spans = [answer[1] for answer in self._ask(("span",)) if answer[1] is not None]
        return Period(min(start for start, _ in spans), max(end for _, end in spans)) if spans else None

    def figures(self, period: Period | None, as_of: datetime | None) -> list[dict[str, Any]]:
        """Every unit's figures (none when `period` is None), sorted by unit then metric, as
        `MetricEngine.figures` sorts them; collects the workers' rejected lines and duplicates."""
        figures: list[dict[str, Any]] = []
        for _, part, rejected, duplicates in self._ask(("figures", period, as_of)):
            figures.extend(part)
            self.rejected.extend(rejected)
            self.duplicates += duplicates
        figures.sort(key=lambda figure: figure["unit"])  # stable: the metrics stay in order within a unit
        return figures
