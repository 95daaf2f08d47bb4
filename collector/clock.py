"""Clock discipline: is this device's wall clock fit to stamp events?

A Raspberry Pi has no battery-backed clock: it boots with the time `fake-hwclock` saved at the last
shutdown, or the image's build date, or 1970, and runs on that until NTP steps it. Events whose time
comes from the source system (a queue log's epoch, an export's call time) are not affected; events
whose time comes from this device's clock (the firmware bridge's receive time) are, and must not leave
the device with a wrong time: the metrics are about days.

The rule (docs/collector.md, "Clock discipline"):
- The clock is **implausible** when it reads earlier than `floor` (the release date of this version,
  or `[clock] floor` in the config): no real event stamped by this version can be older.
- The clock is **unvouched** when it stepped by more than `max_jump_s` against the boot-time clock
  while NTP said it was *not* synchronised; it stays unvouched until NTP reports synchronised. Where the
  NTP state cannot be asked (no systemd, a container), steps are counted but only the floor applies.
- Otherwise it is **ok**.

While the clock is not ok, device-stamped events are kept in the outbox, held (not published), with the
boot id and the clock's offset against the boot-time clock at the moment they were stamped. When the
clock is ok again, each held event of the same boot gets its time corrected by how far the clock was
stepped since (`at + offset_now − offset_then`) and is released; one from an earlier boot cannot be
corrected (the boot-time clock restarted) and stays held, counted as `stranded`.

Seams: `read_clock` gives a `ClockReading` (wall time, boot-time clock, boot id, NTP state, asked by
`ntp_synchronised`); tests pass readings in by hand. This module imports nothing else of the collector:
config, outbox, publisher and agent all build on it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

# No event stamped by this version can be earlier than its release (bump with each release).
RELEASE_FLOOR = date(2026, 11, 1)
DEFAULT_MAX_JUMP_S = 120.0

ClockVerdict = Literal["ok", "implausible", "unvouched"]


@dataclass(frozen=True)
class ClockReading:
    wall_s: float  # seconds since the epoch, as the device's clock says
    boot_s: float  # seconds since boot (CLOCK_BOOTTIME: counts suspend, never stepped)
    boot_id: str  # changes with every boot
    ntp_synced: bool | None  # None: cannot be asked

    @property
    def offset_s(self) -> float:
        """Wall clock minus boot-time clock: constant while nobody steps the clock."""
        return self.wall_s - self.boot_s


@dataclass(frozen=True)
class ClockState:
    verdict: ClockVerdict
    reading: ClockReading
    reason: str | None = None  # for logs and the heartbeat; None when ok

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


@dataclass(frozen=True)
class HoldStamp:
    """What a held event needs to get its time corrected later."""

    boot_id: str
    offset_s: float


class ClockGuard:
    """Judges readings one after another (it remembers the last offset to see steps)."""

    def __init__(self, floor: date = RELEASE_FLOOR, max_jump_s: float = DEFAULT_MAX_JUMP_S) -> None:
        self.floor = floor
        self._floor_s = datetime(floor.year, floor.month, floor.day, tzinfo=timezone.utc).timestamp()
        self.max_jump_s = max_jump_s
        self._last: ClockReading | None = None
        self._unvouched = False
        self.jumps = 0
        self.state: ClockState | None = None

    def observe(self, reading: ClockReading) -> ClockState:
        last = self._last
        if last is not None and last.boot_id == reading.boot_id and abs(reading.offset_s - last.offset_s) > self.max_jump_s:
            self.jumps += 1
            if reading.ntp_synced is False:
                self._unvouched = True
        if reading.ntp_synced is True:
            self._unvouched = False
        self._last = reading
        if reading.wall_s < self._floor_s:
            state = ClockState("implausible", reading, f"the clock reads {_iso(reading.wall_s)}, before {self.floor.isoformat()}")
        elif self._unvouched:
            state = ClockState("unvouched", reading, "the clock was stepped while NTP is not synchronised")
        else:
            state = ClockState("ok", reading)
        self.state = state
        return state

    def heartbeat(self) -> dict[str, Any]:
        state = self.state
        if state is None:
            return {"state": "unknown"}
        synced = state.reading.ntp_synced
        beat: dict[str, Any] = {
            "ntp_synced": "unknown" if synced is None else synced,
            "state": state.verdict,
            "jumps": self.jumps,
            "floor": self.floor.isoformat(),
        }
        if state.reason:
            beat["reason"] = state.reason
        return beat


def _iso(epoch_s: float) -> str:
    try:
        return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{epoch_s:.0f} s since 1970"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def ntp_synchronised() -> bool | None:
    """Whether systemd-timesyncd/chrony report the clock synced; None when that cannot be asked."""
    if shutil.which("timedatectl") is None:
        return None
    try:
        result = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = result.stdout.strip().lower()
    if result.returncode != 0 or value not in ("yes", "no"):
        return None
    return value == "yes"


def make_clock_reader(ntp_state: Callable[[], bool | None]) -> Callable[[], ClockReading]:
    """The real clock: wall time, CLOCK_BOOTTIME (monotonic where that is missing), boot id, NTP state."""
    boot_clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
    this_boot = boot_id()
    return lambda: ClockReading(time.time(), time.clock_gettime(boot_clock), this_boot, ntp_state())


def standalone_hold(config: Any) -> Callable[[], HoldStamp | None]:
    """A hold function for a process that stores device-stamped events without running the agent
    (`vardkoll bridge run --no-publish`): the collector that publishes later releases them."""
    guard = ClockGuard(config.floor, config.max_jump_s)
    asked: list[Any] = [None, None]

    def ntp() -> bool | None:
        now = time.monotonic()
        if asked[0] is None or now - asked[0] >= config.ntp_check_interval_s:
            asked[:] = [now, ntp_synchronised()]
        return asked[1]

    read = make_clock_reader(ntp)

    def hold() -> HoldStamp | None:
        state = guard.observe(read())
        return None if state.ok else HoldStamp(state.reading.boot_id, state.reading.offset_s)

    return hold
