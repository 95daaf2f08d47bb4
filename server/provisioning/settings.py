"""What an enrolled device is told about the broker (environment, like the server's own settings)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ProvisioningSettings(BaseSettings):
    """`VARDKOLL_DEVICE_MQTT_URL`: the broker address as devices reach it (e.g. mqtts://mqtt.example.se:8883);
    unset, devices get the server's own `VARDKOLL_MQTT_URL`. Per-device MQTT credentials come from
    `VARDKOLL_BROKER_ACCOUNTS` (server/settings.py, docs/server.md "Broker accounts")."""

    model_config = SettingsConfigDict(env_prefix="VARDKOLL_", extra="ignore")

    device_mqtt_url: str | None = None
