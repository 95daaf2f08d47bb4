"""Remote config of a device: push a version (published retained on its config topic) and read the
versions pushed so far with what the device last reported about them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from ..remote_config import (
    BrokerUnavailable,
    ConcurrentPush,
    ConfigRefused,
    PushedVersion,
    RetiredDevice,
    SameVersion,
    UnknownDevice,
    config_history,
    outcome_of,
    push_config,
    reported_config,
)
from ..storage.registry_tables import DeviceRow
from .deps import DeviceManager, RegistryReader, ServicesDep, SessionDep, UnitInPath, checked_device_id, confine_to_unit, invalid

router = APIRouter(tags=["devices"])


class ConfigPush(BaseModel):
    version: str = Field(description="this version's name; the device applies each version once", examples=["2026-11-23.2"])
    sections: dict[str, Any] = Field(
        description="poll_interval_s, mqtt (no password), publisher, connectors", examples=[{"publisher": {"max_events_per_s": 100}}]
    )


class ConfigVersionPublic(BaseModel):
    version: str
    sections: dict[str, Any]
    pushed_by: str
    pushed_at: datetime


class PushedPublic(ConfigVersionPublic):
    topic: str


class ReportedPublic(BaseModel):
    version: str | None = Field(description="the version in force; null: the device's own config file")
    state: str = Field(description="local | applied | refused | rolled_back")
    rejected: dict[str, Any] | None = Field(None, description="the last version refused or rolled back, with the device's reason")
    heartbeat_at: str | None = Field(description="the device's clock when it sent the heartbeat")


class ConfigHistory(BaseModel):
    unit: str
    device: str
    versions: list[ConfigVersionPublic] = Field(description="newest first")
    reported: ReportedPublic | None = Field(description="the `config` of the device's last heartbeat; null when it reported none")
    latest_outcome: str | None = Field(description="the newest version by the device's last word: applied | refused | rolled_back | pending")


def _public(pushed: PushedVersion) -> ConfigVersionPublic:
    return ConfigVersionPublic(version=pushed.version, sections=pushed.sections, pushed_by=pushed.pushed_by, pushed_at=pushed.pushed_at)


def _device(session: SessionDep, unit: str, device: str) -> DeviceRow:
    row = session.get(DeviceRow, (unit, checked_device_id(device)))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device} is not registered for unit {unit}")
    return row


@router.put(
    "/units/{unit}/devices/{device}/config",
    response_model=PushedPublic,
    responses={
        409: {"description": "the version equals the device's last one, or the device is retired"},
        503: {"description": "the broker could not take the document; nothing was recorded"},
    },
)
def push_device_config(
    principal: DeviceManager, unit: UnitInPath, device: Annotated[str, Path()], body: ConfigPush, session: SessionDep, services: ServicesDep
) -> PushedPublic:
    """Publish a remote config version for the device (retained, QoS 1) and record it. The collector
    applies it once and rolls back if it cannot reconnect with it; GET shows what it reported."""
    confine_to_unit(session, principal, unit)
    _device(session, unit, device)
    try:
        pushed = push_config(session, services.config_publisher, unit, device, body.version, body.sections, principal.name, datetime.now(timezone.utc))
    except ConfigRefused as exc:
        raise invalid("body", "sections", str(exc)) from None
    except UnknownDevice as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except SameVersion as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{exc} (at {exc.last.pushed_at.isoformat()} by {exc.last.pushed_by}); the collector ignores a version it has handled: give this one a new name",
        ) from None
    except (RetiredDevice, ConcurrentPush) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except BrokerUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the config was not published and nothing was recorded: {exc}; try again when the broker is reachable"
        ) from None
    session.commit()
    return PushedPublic(**_public(pushed).model_dump(), topic=pushed.topic or "")


@router.get("/units/{unit}/devices/{device}/config", response_model=ConfigHistory)
def device_config(principal: RegistryReader, unit: UnitInPath, device: Annotated[str, Path()], session: SessionDep) -> ConfigHistory:
    """The versions pushed to the device, newest first, and what its last heartbeat says about its config."""
    confine_to_unit(session, principal, unit)
    row = _device(session, unit, device)
    versions = config_history(session, unit, device)
    reported = reported_config(row.last_status)
    return ConfigHistory(
        unit=unit,
        device=device,
        versions=[_public(v) for v in versions],
        reported=ReportedPublic(**reported.as_json(), heartbeat_at=reported.heartbeat_at) if reported else None,
        latest_outcome=outcome_of(versions[0].version, reported) if versions else None,
    )
