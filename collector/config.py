"""The collector's configuration: one typed model per component, snake_case keys, read from TOML.

The documented example is `deploy/collector/collector.example.toml`. Unknown keys are errors (a typo
must not silently fall back to a default), and every error names the key and the file. The models are
msgspec structs (collector/settings.py says why not pydantic).
"""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, is_device_id, is_hsa_id

from .clock import DEFAULT_MAX_JUMP_S, RELEASE_FLOOR
from .settings import SecretText, Settings, SettingsError, parse
from vardkoll.protocol.broker_url import parse_broker_url
from vardkoll.protocol.topics import DEFAULT_PREFIX

PositiveFloat = Annotated[float, Meta(gt=0)]


class MqttConfig(Settings):
    """How to reach the broker. `mqtts://` means TLS (port 8883 unless given)."""

    url: str = "mqtts://localhost:8883"
    username: str | None = None
    password: SecretText | None = None
    password_file: Path | None = None  # preferred over `password`: keep it mode 0600
    ca_file: Path | None = None  # the CA that signed the broker's certificate; system CAs when unset
    topic_prefix: str = DEFAULT_PREFIX
    keepalive_s: Annotated[int, Meta(ge=5, le=3600)] = 30
    protocol: Literal["5", "3.1.1"] = "5"  # "3.1.1" only for a broker without MQTT 5 (the demo's in-process broker)

    def check(self) -> None:
        try:
            parse_broker_url(self.url)
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from None

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


class OutboxConfig(Settings):
    path: Path = Path("/var/lib/vardkoll-collector/outbox.db")
    max_events: Annotated[int, Meta(ge=1)] = 2_000_000
    max_bytes: Annotated[int, Meta(ge=1024)] = 512 * 1024 * 1024
    drop_policy: Literal["drop_oldest", "drop_newest"] = "drop_oldest"


class PublisherConfig(Settings):
    batch_events: Annotated[int, Meta(ge=1, le=5000)] = 500  # the server accepts at most 5000 per batch
    batch_max_bytes: Annotated[int, Meta(ge=1024)] = 1024 * 1024  # the server's limit is 4 MiB
    max_events_per_s: PositiveFloat = 200.0  # the drain rate after an outage (token bucket)
    start_jitter_s: Annotated[float, Meta(ge=0)] = 30.0  # random wait after (re)connecting before draining
    max_inflight_batches: Annotated[int, Meta(ge=1)] = 4  # batches sent and not yet acknowledged
    resend_after_s: PositiveFloat = 30.0  # no acknowledgement by then: send again
    max_resend_after_s: PositiveFloat = 600.0  # the wait doubles per attempt up to this
    heartbeat_interval_s: PositiveFloat = 60.0


class ClockConfig(Settings):
    """Clock discipline (collector/clock.py): when device-stamped events are held back."""

    floor: date = RELEASE_FLOOR  # a clock reading earlier than this is implausible
    max_jump_s: PositiveFloat = DEFAULT_MAX_JUMP_S  # a bigger step without NTP sync is unvouched
    ntp_check_interval_s: PositiveFloat = 30.0  # how often `timedatectl` is asked


class LookupConfig(Settings):
    """The local map from pseudonyms back to the source's references (`vardkoll collector lookup`)."""

    enabled: bool = True
    path: Path | None = None  # default: lookup.db beside the outbox
    retention_days: Annotated[int, Meta(ge=1, le=366)] = 60


class PseudonymConfig(Settings):
    time_zone_keys: ClassVar[tuple[str, ...]] = ("timezone",)

    secret_file: Path = Path("/var/lib/vardkoll-collector/pseudonym.key")
    # The key schedule (docs/privacy.md): calls and cases get the key of the reporting period (a calendar
    # month in this time zone, the unit's) of their first event; the book of those periods lives here.
    timezone: str = "Europe/Stockholm"
    periods_file: Path | None = None  # default: pseudonym-periods.db beside the outbox


class RemoteConfigSettings(Settings):
    """Config versions from the retained `{prefix}/{unit}/{device}/config` topic (docs/collector.md)."""

    enabled: bool = True
    state_file: Path | None = None  # the last good remote config; default: remote-config.json beside the outbox
    apply_timeout_s: PositiveFloat = 30.0  # no broker connection by then: roll back


class SoftwareUpdateSettings(Settings):
    """Signed software updates offered through remote config (docs/collector.md, "Software updates")."""

    enabled: bool = True
    trusted_keys: Path = Path("/etc/vardkoll-collector/update-keys")  # a folder of *.pub (Ed25519, PEM) or one file


class ConnectorEntry:
    """One `[[connectors]]` table: `type` picks the connector, the other keys (`settings`) are its own
    config, checked by the connector's own model when it is built (`connectors.build_connector`)."""

    __slots__ = ("type", "name", "_settings")

    def __init__(self, type: str, name: str | None = None, **settings: Any) -> None:
        if not isinstance(type, str):
            raise ValueError("type: must be text, the connector's kind")
        if name is not None and not isinstance(name, str):
            raise ValueError("name: must be text")
        self.type, self.name, self._settings = type, name, settings

    @classmethod
    def from_document(cls, table: Any) -> "ConnectorEntry":
        if isinstance(table, cls):
            return table
        if not isinstance(table, dict):
            raise ValueError("must be a table")
        if "type" not in table:
            raise ValueError("type: Field required")
        return cls(**table)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    @property
    def instance_name(self) -> str:
        return self.name or self.type

    def to_document(self) -> dict[str, Any]:
        """The `[[connectors]]` table again, as written."""
        return {"type": self.type, **({"name": self.name} if self.name is not None else {}), **self._settings}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConnectorEntry) and other.to_document() == self.to_document()

    def __repr__(self) -> str:
        return f"ConnectorEntry(type={self.type!r}, name={self.name!r})"  # not the settings: they may hold a path or a token name


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


# `load_config(check_call_links=False)` turns the callback-link rule off while it reads the file.
_CHECK_CALL_LINKS: ContextVar[bool] = ContextVar("check_call_links", default=True)


class CollectorConfig(Settings):
    unit: str  # the clinic's HSA-id
    device: str  # this collector's id, also its MQTT client id
    poll_interval_s: PositiveFloat = 1.0
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

    def check(self) -> None:
        if not is_hsa_id(self.unit):
            raise ValueError("unit: must be the clinic's HSA-id, e.g. SE2321000016-15SF")
        if not is_device_id(self.device):
            raise ValueError(f"device: {DEVICE_ID_RULE}")
        names = [entry.instance_name for entry in self.connectors]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"connector names must be unique; give each a `name`: {', '.join(doubled)}")
        if _CHECK_CALL_LINKS.get():
            unlinked = unlinked_callback_exports(self.connectors)
            if unlinked:
                raise ValueError(
                    f"connector(s) {', '.join(unlinked)} (callback_csv) and {'/'.join(PHONE_QUEUE_CONNECTORS)} both report calls, "
                    "but the callback export is not linked to the phone system's call ids: each callback would count as a second call. "
                    "Set [connectors.columns] queue_call_id to the export column holding the phone system's call id "
                    "(if the export's call_id column is that id, set queue_call_id to the same column name)"
                )


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
    token = _CHECK_CALL_LINKS.set(check_call_links)
    try:
        return parse_config(document)
    except SettingsError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    finally:
        _CHECK_CALL_LINKS.reset(token)


def parse_config(document: Any) -> CollectorConfig:
    """A parsed config document (TOML's or a merged one) as a CollectorConfig; SettingsError otherwise."""
    return parse(CollectorConfig, document)
