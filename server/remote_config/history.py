"""Push a remote config version to a device, and read the versions pushed so far.

A push is checked first (`protocol.remote_config`: only the sections a collector takes from the
centre, no password), then published retained, and recorded only once the broker has confirmed it:
a push that cannot reach the broker leaves no trace. A version equal to the device's last one is
refused, since the collector ignores a version it has already handled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vardkoll.protocol.remote_config import ConfigDocumentError, decode_config_document, encode_config_document

from ..registry import UnknownDevice
from ..storage.config_tables import DeviceConfigVersion
from ..storage.registry_tables import DeviceRow
from .publisher import ConfigPublisher


class ConfigRefused(ValueError):
    """The sections or the version break a rule of the config document; the message names it."""


class RetiredDevice(Exception):
    pass


class SameVersion(Exception):
    def __init__(self, last: "PushedVersion") -> None:
        super().__init__(f"version {last.version} is already the last one pushed to device {last.device}")
        self.last = last


class ConcurrentPush(Exception):
    """Another push for the same device was recorded between our read and our write."""


@dataclass(frozen=True)
class PushedVersion:
    unit: str
    device: str
    seq: int
    version: str
    sections: dict[str, Any]
    pushed_by: str
    pushed_at: datetime
    topic: str | None = None  # only right after the push

    @classmethod
    def of(cls, row: DeviceConfigVersion) -> "PushedVersion":
        return cls(row.unit, row.device, row.seq, row.version, orjson.loads(row.sections), row.pushed_by, row.pushed_at)


def _checked(version: str, sections: Any) -> tuple[str, dict[str, Any]]:
    """The version as the device will see it (trimmed) and the sections, or ConfigRefused."""
    try:
        return decode_config_document(encode_config_document(version, sections))
    except ConfigDocumentError as exc:
        raise ConfigRefused(str(exc)) from None


def _newest(session: Session, unit: str, device: str) -> DeviceConfigVersion | None:
    return session.scalars(
        select(DeviceConfigVersion)
        .where(DeviceConfigVersion.unit == unit, DeviceConfigVersion.device == device)
        .order_by(DeviceConfigVersion.seq.desc())
        .limit(1)
    ).first()


def push_config(
    session: Session, publish: ConfigPublisher, unit: str, device: str, version: str, sections: Any, pushed_by: str, now: datetime
) -> PushedVersion:
    """Check, publish retained, record (flushed; the caller commits). Raises ConfigRefused, UnknownDevice,
    RetiredDevice, SameVersion, publisher.BrokerUnavailable (nothing recorded) or ConcurrentPush."""
    version, sections = _checked(version, sections)
    row = session.get(DeviceRow, (unit, device))
    if row is None:
        raise UnknownDevice(unit, device)
    if row.retired_at is not None:
        raise RetiredDevice(f"device {device} of unit {unit} is retired; a retired device reads no config")
    newest = _newest(session, unit, device)
    if newest is not None and newest.version == version:
        raise SameVersion(PushedVersion.of(newest))
    topic = publish(unit, device, version, sections)
    record = DeviceConfigVersion(
        unit=unit,
        device=device,
        seq=(newest.seq if newest else 0) + 1,
        version=version,
        sections=orjson.dumps(sections).decode(),
        pushed_by=pushed_by[:200],
        pushed_at=now,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ConcurrentPush(
            f"another config version for device {device} was recorded at the same moment; look at the history and push again if needed"
        ) from None
    return replace(PushedVersion.of(record), topic=topic)


def config_history(session: Session, unit: str, device: str) -> list[PushedVersion]:
    """Every version pushed to the device, newest first."""
    rows = session.scalars(
        select(DeviceConfigVersion).where(DeviceConfigVersion.unit == unit, DeviceConfigVersion.device == device).order_by(DeviceConfigVersion.seq.desc())
    )
    return [PushedVersion.of(row) for row in rows]


def latest_versions(session: Session, unit: str) -> dict[str, PushedVersion]:
    """The newest pushed version of each of the unit's devices (for Installationsvy)."""
    newest: dict[str, PushedVersion] = {}
    rows = session.scalars(select(DeviceConfigVersion).where(DeviceConfigVersion.unit == unit).order_by(DeviceConfigVersion.seq))
    for row in rows:
        newest[row.device] = PushedVersion.of(row)
    return newest
