"""Enrollment: installers get one-time codes for a unit; a collector redeems one for its token and broker details.

`POST /units/{unit}/enrollment-codes` (admin, installer in scope) returns a code valid for at most 24 h.
`POST /units/{unit}/devices/{device}/replacement` retires that device, revokes its tokens and returns a
code for its successor under the same unit (the old device's history stays).
`POST /enroll` needs no token: the code is the credential, redeemed once. It registers the device (or
reactivates it) and returns a `device` API token with the broker's address and topic prefix, and, with
broker accounts (VARDKOLL_BROKER_ACCOUNTS=dynsec), the device's MQTT username and password, once.

When the broker cannot make (or, on replacement, delete) the account, nothing is committed: the code stays
unused, the old device stays registered, and the answer is 503 with what to do.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, is_device_id
from vardkoll.protocol.topics import device_client_id

from ..provisioning import (
    BrokerAccountError,
    BrokerAccounts,
    CodeRefused,
    ProvisioningSettings,
    TooManyFailures,
    issue_code,
    redeem_code,
    replace_device,
)
from ..registry import UnknownDevice
from .deps import DeviceManager, ServicesDep, SessionDep, UnitInPath, confine_to_unit

router = APIRouter(tags=["enrollment"])
log = logging.getLogger("vardkoll.provisioning")


def _device_id(device: str | None) -> str | None:
    if device is not None and not is_device_id(device):
        raise ValueError(f"device {DEVICE_ID_RULE}")
    return device


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: Annotated[str | None, Field(description="only this device id may redeem the code")] = None
    valid_hours: Annotated[float, Field(gt=0, le=24, description="how long the code is valid (at most 24 h)")] = 24

    _check_device = field_validator("device")(_device_id)


class CodePublic(BaseModel):
    code: str
    unit: str
    device: str | None
    expires_at: datetime


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=64)]
    device: str

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        _device_id(device)
        return device


class MqttPublic(BaseModel):
    url: str
    topic_prefix: str
    username: Annotated[str | None, Field(description="the device's broker account; null when accounts are made by hand")] = None
    password: Annotated[str | None, Field(description="its password, shown this once; the server keeps no copy")] = None
    client_id: Annotated[str, Field(description="the MQTT client id to connect with, `{unit}/{device}`: the broker account is bound to it")] = ""


class EnrolledPublic(BaseModel):
    unit: str
    device: str
    token: str
    mqtt: MqttPublic


@router.post("/units/{unit}/enrollment-codes", response_model=CodePublic, status_code=status.HTTP_201_CREATED)
def create_enrollment_code(principal: DeviceManager, unit: UnitInPath, session: SessionDep, body: CodeRequest | None = None) -> CodePublic:
    """A one-time code an installer gives `vardkoll collector enroll`; shown this once."""
    if confine_to_unit(session, principal, unit) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unit {unit} is not registered; add it first")
    body = body or CodeRequest()
    issued = issue_code(session, unit, principal.name, body.device, timedelta(hours=body.valid_hours))
    session.commit()
    return CodePublic(code=issued.code, unit=issued.unit, device=issued.device, expires_at=issued.expires_at)


@router.post("/units/{unit}/devices/{device}/replacement", response_model=CodePublic, status_code=status.HTTP_201_CREATED)
def replace(principal: DeviceManager, unit: UnitInPath, device: str, services: ServicesDep, session: SessionDep, body: CodeRequest | None = None) -> CodePublic:
    """Retire `device` (its history stays), revoke its API tokens, and return a one-time code for its
    successor; `device` in the body pins the successor's id. Shown this once."""
    if confine_to_unit(session, principal, unit) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unit {unit} is not registered; add it first")
    body = body or CodeRequest()
    try:
        issued = replace_device(session, unit, device, principal.name, body.device, timedelta(hours=body.valid_hours), accounts=services.broker_accounts)
    except UnknownDevice as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except BrokerAccountError as exc:
        session.rollback()
        log.error("replacement of device %s of %s refused by the broker: %s", device, unit, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"device {device} was not replaced (nothing changed): {exc}") from None
    session.commit()
    return CodePublic(code=issued.code, unit=issued.unit, device=issued.device, expires_at=issued.expires_at)


@router.post("/enroll", response_model=EnrolledPublic)
def enroll(body: EnrollRequest, request: Request, services: ServicesDep, session: SessionDep) -> EnrolledPublic:
    """Redeem a one-time code (no token needed): registers the device and returns its API token and (with
    broker accounts) its MQTT username and password, once."""
    client = request.client.host if request.client else "unknown"
    accounts = services.broker_accounts
    try:
        enrolled = redeem_code(session, body.code, body.device, client, accounts=accounts)
    except TooManyFailures as exc:
        session.rollback()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    except CodeRefused as exc:
        session.commit()  # keep the recorded failure
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except BrokerAccountError as exc:
        session.rollback()  # the code stays unused
        log.error("enrollment of device %s refused by the broker: %s", body.device, exc)
        # The caller holds only a code: the broker's address and the admin account's name stay in the log.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the server could not create this device's broker account; the code has not been used: try again later, or tell the operator (server log)",
        ) from None
    try:
        session.commit()
    except Exception:
        if accounts is not None and enrolled.broker is not None:
            _remove_quietly(accounts, enrolled.unit, enrolled.device)  # no account without its registration
        raise
    settings = services.settings
    url = ProvisioningSettings().device_mqtt_url or settings.mqtt_url
    broker = enrolled.broker
    return EnrolledPublic(
        unit=enrolled.unit,
        device=enrolled.device,
        token=enrolled.token,
        mqtt=MqttPublic(
            url=url,
            topic_prefix=settings.topic_prefix,
            username=broker.username if broker else None,
            password=broker.password if broker else None,
            client_id=device_client_id(enrolled.unit, enrolled.device),
        ),
    )


def _remove_quietly(accounts: BrokerAccounts, unit: str, device: str) -> None:
    try:
        accounts.remove(unit, device)
    except BrokerAccountError as exc:
        log.error("could not remove the broker account of device %s of %s after a failed commit: %s", device, unit, exc)
