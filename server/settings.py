"""Server settings, from the environment (VARDKOLL_*), in one typed class.

Outside dev mode the server refuses insecure defaults: no admin token, or dev mode on a non-loopback
address. Dev mode (VARDKOLL_DEV=1) accepts events from unregistered devices.

Broker accounts (`VARDKOLL_BROKER_ACCOUNTS`): `manual` (default) leaves per-device MQTT credentials to
whoever runs the broker; `dynsec` makes the server create each device's account in Mosquitto's dynamic
security plugin at enrollment and delete it when the device is retired or replaced, with the admin
account `VARDKOLL_BROKER_ADMIN_USERNAME`/`_PASSWORD` (both required then).
"""

from __future__ import annotations

import ipaddress

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vardkoll.protocol.broker_url import parse_broker_url
from vardkoll.protocol.topics import DEFAULT_PREFIX


class InsecureSettings(ValueError):
    pass


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VARDKOLL_", extra="ignore")

    database_url: str = "sqlite:///./vardkoll.db"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    topic_prefix: str = DEFAULT_PREFIX
    # MQTT v5 shared-subscription group; several server processes split the load between them.
    share_group: str | None = "vardkoll-ingest"
    # Names this process's MQTT session. Give each server process on a host its own stable value
    # (e.g. 1, 2, 3) so that a restarted process resumes its session; by default the process id.
    instance: str | None = None
    admin_token: SecretStr | None = None
    dev: bool = False
    max_batch_events: int = Field(default=5000, ge=1)
    max_payload_bytes: int = Field(default=4 << 20, ge=1024)
    broker_accounts: Literal["manual", "dynsec"] = "manual"
    broker_admin_url: str | None = None  # where the admin account connects; default: mqtt_url
    broker_admin_username: str | None = None
    broker_admin_password: SecretStr | None = None
    broker_admin_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Lifetimes and retention (docs/privacy.md). Raw events must outlive the continuity window (18 months).
    token_lifetime_days: int = Field(default=365, ge=1, le=3650)  # people's API tokens
    device_token_lifetime_days: int = Field(default=730, ge=1, le=3650)
    event_retention_days: int = Field(default=730, ge=570, le=36500)
    dead_letter_retention_days: int = Field(default=90, ge=1, le=3650)
    access_log_retention_days: int = Field(default=1095, ge=30, le=36500)

    @field_validator("mqtt_url", "broker_admin_url")
    @classmethod
    def _broker_url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_broker_url(url)
        return url

    @model_validator(mode="after")
    def _broker_admin_given(self) -> "ServerSettings":
        if self.broker_accounts == "dynsec" and not (self.broker_admin_username and self.broker_admin_password):
            raise ValueError("VARDKOLL_BROKER_ACCOUNTS=dynsec needs VARDKOLL_BROKER_ADMIN_USERNAME and VARDKOLL_BROKER_ADMIN_PASSWORD "
                             "(the dynsec admin account, deploy/broker/README.md); or set VARDKOLL_BROKER_ACCOUNTS=manual")
        return self

    def check_secure(self, host: str) -> None:
        """Refuse to serve on `host` with settings that are only fit for a developer's machine."""
        if self.dev and not _is_loopback(host):
            raise InsecureSettings(f"dev mode (VARDKOLL_DEV=1) only serves on a loopback address, not {host}")
        if not self.dev and self.admin_token is None:
            raise InsecureSettings("set VARDKOLL_ADMIN_TOKEN (or VARDKOLL_DEV=1 on a developer machine)")
        if not self.dev and self.admin_token is not None and len(self.admin_token.get_secret_value()) < 24:
            raise InsecureSettings("VARDKOLL_ADMIN_TOKEN must be at least 24 characters")

    @property
    def mqtt_host(self) -> str:
        return parse_broker_url(self.mqtt_url).host

    @property
    def mqtt_port(self) -> int:
        return parse_broker_url(self.mqtt_url).port

    @property
    def mqtt_tls(self) -> bool:
        return parse_broker_url(self.mqtt_url).tls


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
