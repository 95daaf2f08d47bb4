"""Which devices may publish, and what their status topic last said."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import orjson
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.protocol.field_rules import is_device_id, is_hsa_id
from vardkoll.protocol.heartbeat import StatusRefused, read_status

from ..storage.registry_tables import DeviceRow

log = logging.getLogger(__name__)


class DeviceRegistry:
    def __init__(self, sessions: sessionmaker[Session], accept_unregistered: bool, ttl_s: float = 10.0) -> None:
        self._sessions = sessions
        self._accept_unregistered = accept_unregistered
        self._ttl_s = ttl_s
        self._known: dict[tuple[str, str], float] = {}
        self.statuses_refused = 0

    def may_publish(self, unit: str, device: str) -> bool:
        """Registered and not retired (in dev mode: any well-formed unit and device id)."""
        if not (is_hsa_id(unit) and is_device_id(device)):
            return False
        if self._accept_unregistered:
            return True
        checked = self._known.get((unit, device))
        if checked is not None and time.monotonic() - checked < self._ttl_s:
            return True
        with self._sessions() as session:
            row = session.get(DeviceRow, (unit, device))
            allowed = row is not None and row.retired_at is None
        if allowed:
            self._known[(unit, device)] = time.monotonic()
        return allowed

    def seen(self, unit: str, device: str) -> None:
        self.seen_many([(unit, device)])

    def seen_many(self, devices: list[tuple[str, str]]) -> None:
        """Devices whose batches were just committed, in one transaction (in key order: no deadlocks)."""
        now = datetime.now(timezone.utc)
        with self._sessions.begin() as session:
            for unit, device in sorted(set(devices)):
                self._apply(session, unit, device, None, None, now)

    def record_status(self, unit: str, device: str, payload: bytes) -> None:
        """The retained status topic: "offline" (the last will) or a JSON heartbeat, of which only the
        known fields are kept (protocol.heartbeat). A refused status changes nothing."""
        if not self.may_publish(unit, device):
            return
        try:
            status = read_status(payload)
        except StatusRefused as exc:
            self.statuses_refused += 1
            log.warning("status of %s/%s refused: %s", unit, device, exc.reason)  # the reason names no value
            return
        heartbeat = None if status.heartbeat is None else orjson.dumps(status.heartbeat).decode()
        self._update(unit, device, status="online" if status.online else "offline", heartbeat=heartbeat)

    def _update(self, unit: str, device: str, status: str | None, heartbeat: str | None) -> None:
        with self._sessions.begin() as session:
            self._apply(session, unit, device, status, heartbeat, datetime.now(timezone.utc))

    def _apply(self, session: Session, unit: str, device: str, status: str | None, heartbeat: str | None, now: datetime) -> None:
        row = session.get(DeviceRow, (unit, device))
        if row is None:
            if not self._accept_unregistered:
                return
            row = DeviceRow(unit=unit, device=device, registered_at=now)
            session.add(row)
        if status is not None:
            row.status = status
        if status != "offline":
            row.last_seen_at = now
        if heartbeat is not None:
            row.last_status = heartbeat
