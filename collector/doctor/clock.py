"""Is the device clock right? NTP state (timedatectl, else the kernel's adjtimex) and a comparison with
the Date header of servers the device talks to. Every event's `at` comes from somewhere, and a Pi boots
with a stale clock (fake-hwclock), so the installer must see this before the collector runs."""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable

from ..clock import ntp_synchronised

TIME_ERROR = 5  # adjtimex: the clock is not synchronised
STA_UNSYNC = 0x0040


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (Linux); only `modes` is written (0: read only)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


def kernel_synchronised() -> bool | None:
    """The kernel's own view (adjtimex with no changes); None where it cannot be asked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR and not timex.status & STA_UNSYNC


def ntp_state() -> tuple[bool | None, str]:
    """(synced, how it was asked)."""
    synced = ntp_synchronised()
    if synced is not None:
        return synced, "timedatectl"
    return kernel_synchronised(), "adjtimex"


@dataclass(frozen=True)
class ClockComparison:
    source: str
    offset_s: float  # our clock minus theirs


def offset_from_date_header(header: str | None, sent_at: float, received_at: float) -> float | None:
    """Our clock minus the server's, from an HTTP Date header (whole seconds; the request's midpoint)."""
    if not header:
        return None
    try:
        theirs = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=timezone.utc)
    return (sent_at + received_at) / 2 - theirs.timestamp()


def earliest_plausible() -> datetime:
    """The clock cannot be before this software was installed (a Pi with a stale clock can)."""
    return datetime.fromtimestamp(Path(__file__).stat().st_mtime, timezone.utc)


Now = Callable[[], float]
