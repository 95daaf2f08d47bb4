"""The MQTT client id of this server process: stable across restarts of the same process slot.

The broker keeps a persistent session (with its share of the shared subscription and the messages
queued for it) under the client id. A restarted process must come back under the same id, or the dead
session keeps receiving its share until it expires (issue 12, item 1). So the id is never made from
the process id:

- `VARDKOLL_INSTANCE` names the slot (systemd template units pass `%i`: `vardkoll-server@2` is 2);
- without it, the process takes the lowest free slot on this host, held by an advisory lock on a file
  (`<tmp>/vardkoll-<uid>/mqtt-slots/<broker>-<n>.lock`): the lock dies with the process, even after
  kill -9, so a restarted process takes the slot it left, and two processes never share one.

The id is `vardkoll-server-<host>-<slot>`. Device accounts are bound to their own client ids in the
broker (server/provisioning/broker_accounts.py), so no device can take this one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path
from typing import IO

SERVER_CLIENT_PREFIX = "vardkoll-server-"
_MAX_SLOTS = 64


class ServerIdentity:
    """The client id, and the slot lock that keeps it ours until `release()` (or the process's end)."""

    def __init__(self, instance: str | None, broker_url: str, lock_dir: Path | None = None) -> None:
        host = socket.gethostname().split(".")[0] or "host"
        self._lock: IO[str] | None = None
        slot = instance if instance else str(self._take_free_slot(broker_url, lock_dir))
        self.client_id = f"{SERVER_CLIENT_PREFIX}{host}-{slot}"

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file lets go of the lock
            self._lock = None

    def _take_free_slot(self, broker_url: str, lock_dir: Path | None) -> int:
        import fcntl

        folder = lock_dir or Path(tempfile.gettempdir()) / f"vardkoll-{os.getuid()}" / "mqtt-slots"
        folder.mkdir(parents=True, exist_ok=True)
        broker = hashlib.sha256(broker_url.encode()).hexdigest()[:12]
        for slot in range(1, _MAX_SLOTS + 1):
            handle = open(folder / f"{broker}-{slot}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self._lock = handle
            return slot
        raise RuntimeError(f"more than {_MAX_SLOTS} server processes on this host use one broker; set VARDKOLL_INSTANCE for each")
