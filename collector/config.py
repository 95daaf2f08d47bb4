"""The collector's configuration: one typed model per component, snake_case keys, read from TOML.

The documented example is `deploy/collector/collector.example.toml`. Unknown keys are errors (a typo
must not silently fall back to a default), and every error names the key and the file.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, is_device_id, is_hsa_id
from vardkoll.protocol.local_time import TimeZoneName

from .clock import DEFAULT_MAX_JUMP_S, RELEASE_FLOOR
from vardkoll.protocol.broker_url import parse_broker_url
from vardkoll.protocol.topics import DEFAULT_PREFIX


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Strict):
    """How to reach the broker. `mqtts://` means TLS (port 8883 unless given)."""

    url: str = "mqtts://localhost:8883"
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None  # preferred over `password`: keep it mode 0600
    ca_file: Path | None = None  # the CA that signed the broker's certificate; system CAs when unset
    topic_prefix: str = DEFAULT_PREFIX
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    protocol: Literal["5", "3.1.1"] = "5"  # "3.1.1" only for a broker without MQTT 5 (the demo's in-process broker)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        parse_broker_url(url)
        return url

    @property
    def host(self) -> str:
        return parse_broker_url(self.url, default_host="localhost").host

    @property
    def port(self) -> int:
        return parse_broker_url(self.url).port

    @property
    def tls(self) -> bool:
        return parse_broker_url(self.url).tls

    def password_value(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.password.get_secret_value() if self.password else None


class OutboxConfig(_Strict):
    path: Path = Path("/var/lib/vardkoll-collector/outbox.db")
    max_events: int = Field(default=2_000_000, ge=1)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    drop_policy: Literal["drop_oldest", "drop_newest"] = "drop_oldest"


class PublisherConfig(_Strict):
    batch_events: int = Field(default=500, ge=1, le=5000)  # the server accepts at most 5000 per batch
    batch_max_bytes: int = Field(default=1024 * 1024, ge=1024)  # the server's limit is 4 MiB
    max_events_per_s: float = Field(default=200.0, gt=0)  # the drain rate after an outage (token bucket)
    start_jitter_s: float = Field(default=30.0, ge=0)  # random wait after (re)connecting before draining
    max_inflight_batches: int = Field(default=4, ge=1)  # batches sent and not yet acknowledged
    resend_after_s: float = Field(default=30.0, gt=0)  # no acknowledgement by then: send again
    max_resend_after_s: float = Field(default=600.0, gt=0)  # the wait doubles per attempt up to this
    heartbeat_interval_s: float = Field(default=60.0, gt=0)


class ClockConfig(_Strict):
    """Clock discipline (collector/clock.py): when device-stamped events are held back."""

    floor: date = RELEASE_FLOOR  # a clock reading earlier than this is implausible
    max_jump_s: float = Field(default=DEFAULT_MAX_JUMP_S, gt=0)  # a bigger step without NTP sync is unvouched
    ntp_check_interval_s: float = Field(default=30.0, gt=0)  # how often `timedatectl` is asked


class LookupConfig(_Strict):
    """The local map from pseudonyms back to the source's references (`vardkoll collector lookup`)."""

    enabled: bool = True
    path: Path | None = None  # default: lookup.db beside the outbox
    retention_days: int = Field(default=60, ge=1, le=366)


class PseudonymConfig(_Strict):
    secret_file: Path = Path("/var/lib/vardkoll-collector/pseudonym.key")
    # The key schedule (docs/privacy.md): calls and cases get the key of the reporting period (a calendar
    # month in this time zone, the unit's) of their first event; the book of those periods lives here.
    timezone: TimeZoneName = "Europe/Stockholm"
    periods_file: Path | None = None  # default: pseudonym-periods.db beside the outbox


class RemoteConfigSettings(_Strict):
    """Config versions from the retained `{prefix}/{unit}/{device}/config` topic (docs/collector.md)."""

    enabled: bool = True
    state_file: Path | None = None  # the last good remote config; default: remote-config.json beside the outbox
    apply_timeout_s: float = Field(default=30.0, gt=0)  # no broker connection by then: roll back


class SoftwareUpdateSettings(_Strict):
    """Signed software updates offered through remote config (docs/collector.md, "Software updates")."""

    enabled: bool = True
    trusted_keys: Path = Path("/etc/vardkoll-collector/update-keys")  # a folder of *.pub (Ed25519, PEM) or one file


class ConnectorEntry(BaseModel):
    """One `[[connectors]]` table: `type` picks the connector, the other keys are its own config."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str
    name: str | None = None  # distinguishes two connectors of one type; defaults to the type

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def instance_name(self) -> str:
        return self.name or self.type


# Connectors that report a phone queue's calls (`call.offered` with the phone system's call ids).
PHONE_QUEUE_CONNECTORS = ("asterisk_queue_log",)


def unlinked_callback_exports(connectors: list[ConnectorEntry]) -> list[str]:
    """The callback_csv connectors whose calls the config does not link to the phone queue's: beside a
    phone-queue connector each export row would be a second call unless `columns.queue_call_id` says
    which column holds the phone system's id of the call."""
    if not any(entry.type in PHONE_QUEUE_CONNECTORS for entry in connectors):
        return []
    unlinked = []
    for entry in connectors:
        columns = entry.settings.get("columns")
        if entry.type == "callback_csv" and not (isinstance(columns, dict) and columns.get("queue_call_id")):
            unlinked.append(entry.instance_name)
    return unlinked


class CollectorConfig(_Strict):
    unit: str  # the clinic's HSA-id
    device: str  # this collector's id, also its MQTT client id
    poll_interval_s: float = Field(default=1.0, gt=0)
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    publisher: PublisherConfig = PublisherConfig()
    pseudonyms: PseudonymConfig = PseudonymConfig()
    remote_config: RemoteConfigSettings = RemoteConfigSettings()
    clock: ClockConfig = ClockConfig()
    lookup: LookupConfig = LookupConfig()
    software_update: SoftwareUpdateSettings = SoftwareUpdateSettings()
    connectors: list[ConnectorEntry] = []

    @property
    def lookup_file(self) -> Path:
        return self.lookup.path or self.outbox.path.parent / "lookup.db"

    @property
    def periods_file(self) -> Path:
        return self.pseudonyms.periods_file or self.outbox.path.parent / "pseudonym-periods.db"

    @property
    def remote_state_file(self) -> Path:
        return self.remote_config.state_file or self.outbox.path.parent / "remote-config.json"

    @field_validator("unit")
    @classmethod
    def _hsa_id(cls, unit: str) -> str:
        if not is_hsa_id(unit):
            raise ValueError("must be the clinic's HSA-id, e.g. SE2321000016-15SF")
        return unit

    @field_validator("device")
    @classmethod
    def _device_id(cls, device: str) -> str:
        if not is_device_id(device):
            raise ValueError(DEVICE_ID_RULE)
        return device

    @model_validator(mode="after")
    def _connector_names_unique(self) -> "CollectorConfig":
        names = [entry.instance_name for entry in self.connectors]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"connector names must be unique; give each a `name`: {', '.join(doubled)}")
        return self

    @model_validator(mode="after")
    def _callbacks_linked_to_calls(self, info: ValidationInfo) -> "CollectorConfig":
        if (info.context or {}).get("check_call_links", True):
            unlinked = unlinked_callback_exports(self.connectors)
            if unlinked:
                raise ValueError(
                    f"connector(s) {', '.join(unlinked)} (callback_csv) and {'/'.join(PHONE_QUEUE_CONNECTORS)} both report calls, "
                    "but the callback export is not linked to the phone system's call ids: each callback would count as a second call. "
                    "Set [connectors.columns] queue_call_id to the export column holding the phone system's call id "
                    "(if the export's call_id column is that id, set queue_call_id to the same column name)"
                )
        return self


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file, the key and the problem."""


def load_config(path: Path | str, *, check_call_links: bool = True) -> CollectorConfig:
    """The config in `path`. `check_call_links=False` leaves the callback-link rule to the caller
    (`collector doctor` reports it as one finding among the others)."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return CollectorConfig.model_validate(document, context={"check_call_links": check_call_links})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}" for error in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
