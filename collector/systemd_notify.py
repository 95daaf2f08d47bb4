"""systemd's service notifications (sd_notify) without a library: one datagram per message.

With `Type=notify` and `WatchdogSec=` in the unit (deploy/collector/), systemd sets `NOTIFY_SOCKET` and
`WATCHDOG_USEC`. The agent says `READY=1` once it runs, `WATCHDOG=1` from its main loop at least every half
watchdog interval, and `STOPPING=1` on its way out; a loop that hangs stops the pings and systemd kills
and restarts the process. Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Callable

log = logging.getLogger("vardkoll.collector.systemd")


class ServiceNotifier:
    def __init__(self, environ: dict[str, str] | None = None, clock: Callable[[], float] | None = None) -> None:
        import time

        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading '@' and means a leading NUL byte.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._clock = clock or time.monotonic
        self.watchdog_s = self._watchdog_interval(env)
        self._next_ping = 0.0
        self._socket: socket.socket | None = None
        self._failed = False

    @staticmethod
    def _watchdog_interval(env: dict[str, str] | os._Environ[str]) -> float | None:
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 1_000_000 or None
        except ValueError:
            return None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> bool:
        if not self._address or self._failed:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message.encode(), self._address)
            return True
        except OSError as exc:
            # Logged once: a notify socket that fails once (systemd gone) fails every time.
            log.warning("could not notify systemd (%s); watchdog pings stop", exc.strerror or type(exc).__name__)
            self._failed = True
            return False

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def ping(self) -> None:
        """`WATCHDOG=1`, at most every half watchdog interval (the loop calls this every wake-up)."""
        if self.watchdog_s is None:
            return
        now = self._clock()
        if now >= self._next_ping:
            self._next_ping = now + self.watchdog_s / 2
            self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
