"""Bridge configuration: which devices exist, which unit each belongs to, what each input means.

One typed model (msgspec), snake_case keys, loaded from TOML or JSON. `example-bridge.toml` next to this
file is the documented example. Errors say what is wrong and where (`ConfigError`).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec
import orjson

from vardkoll.protocol.events import AssessmentForm, ContactChannel, Profession
from vardkoll.protocol.local_time import check_time_zone
from vardkoll.protocol.personal_number import contains_personal_number

from .messages import MAX_DEVICE_ID, DeviceKind

_HSA_ID = re.compile(r"SE([0-9]{10}|[0-9]{12})-[0-9A-Za-z]{1,24}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9._-]{1,%d}" % MAX_DEVICE_ID)

KindName = Literal["ticket_dispenser", "button_panel", "queue_panel"]
KIND_CODES: dict[str, int] = {
    "ticket_dispenser": DeviceKind.TICKET_DISPENSER,
    "button_panel": DeviceKind.BUTTON_PANEL,
    "queue_panel": DeviceKind.QUEUE_PANEL,
}


class ConfigError(ValueError):
    """The bridge configuration cannot be used; the message says where and what to change."""


class InputMapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one button or dispenser input stands for.

    `care.contact`: a drop-in ticket; needs `channel` (usually "visit") and `listed`.
    `care.assessed`: "assessment done"; needs `profession` and `form`.
    """

    event: Literal["care.contact", "care.assessed"]
    channel: ContactChannel | None = None
    listed: bool = True
    profession: Profession | None = None
    form: AssessmentForm | None = None


class DeviceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    device_id: str
    unit: str
    kind: KindName
    inputs: dict[int, InputMapping] = {}
    # Button panels: the dispenser whose ticket numbers (EVENT `ref`) the staff enter with a press, so an
    # "assessment done" is linked to the drop-in contact of the same ticket.
    ticket_source: str | None = None

    @property
    def kind_code(self) -> int:
        return KIND_CODES[self.kind]


class BridgeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    devices: tuple[DeviceConfig, ...]
    # Secret key for the keyed hash behind event ids and case pseudonyms: the collector's key once the
    # bridge runs inside it. Exactly one of the two.
    pseudonym_key: str | None = None
    pseudonym_key_file: str | None = None
    ports: tuple[str, ...] = ()
    baudrate: int = 115200
    timezone: str = "Europe/Stockholm"
    # An EVENT without device time sync: "receive_time" (default) stamps it with the bridge's receive
    # time and counts it; "hold" refuses it (NACK time_not_synced) so the device keeps it.
    unsynced_events: Literal["receive_time", "hold"] = "receive_time"
    # A synced device time further in the future than this is not believed: receive time, counted.
    max_future_skew_s: float = 300.0
    time_sync_interval_s: float = 600.0
    reopen_initial_s: float = 0.5
    reopen_max_s: float = 30.0
    # The `device` field of the events (the collector that sends them), or none.
    event_device: str | None = None

    def device(self, device_id: str) -> DeviceConfig | None:
        for device in self.devices:
            if device.device_id == device_id:
                return device
        return None

    def key(self, base: Path | None = None) -> bytes:
        if self.pseudonym_key is not None:
            return self.pseudonym_key.encode("utf-8")
        path = Path(self.pseudonym_key_file or "")
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"pseudonym_key_file: cannot read {path}: {exc.strerror}") from None
        if len(key) < 16:
            raise ConfigError(f"pseudonym_key_file: {path} holds fewer than 16 bytes; use a long random key")
        return key


def check_config(config: BridgeConfig) -> BridgeConfig:
    """Rules the types alone do not catch. Returns the config, or raises ConfigError."""
    if (config.pseudonym_key is None) == (config.pseudonym_key_file is None):
        raise ConfigError("give exactly one of pseudonym_key and pseudonym_key_file")
    if config.pseudonym_key is not None and len(config.pseudonym_key) < 16:
        raise ConfigError("pseudonym_key must be at least 16 characters (a long random secret)")
    try:
        check_time_zone(config.timezone)
    except ValueError as exc:
        raise ConfigError(f"timezone: {exc}") from None
    if config.reopen_initial_s <= 0 or config.reopen_max_s < config.reopen_initial_s:
        raise ConfigError("reopen_initial_s must be > 0 and reopen_max_s at least as large")
    seen: set[str] = set()
    for index, device in enumerate(config.devices):
        where = f"devices[{index}]"
        if not _DEVICE_ID.fullmatch(device.device_id):
            raise ConfigError(f"{where}.device_id must be 1–{MAX_DEVICE_ID} characters of A–Z, a–z, 0–9 and . _ -")
        if contains_personal_number(device.device_id):
            raise ConfigError(f"{where}.device_id looks like a personal identity number; choose another name")
        if device.device_id in seen:
            raise ConfigError(f"{where}.device_id {device.device_id!r} is configured twice")
        seen.add(device.device_id)
        if not _HSA_ID.fullmatch(device.unit):
            raise ConfigError(f"{where}.unit must be an HSA-id such as SE2321000016-15SF")
        for input_id, mapping in device.inputs.items():
            at = f"{where}.inputs.{input_id}"
            if not 0 <= input_id <= 255:
                raise ConfigError(f"{at}: input ids are 0–255")
            if mapping.event == "care.contact" and mapping.channel is None:
                raise ConfigError(f'{at}: care.contact needs channel ("visit" for a drop-in ticket)')
            if mapping.event == "care.assessed" and (mapping.profession is None or mapping.form is None):
                raise ConfigError(f"{at}: care.assessed needs profession and form")
    for index, device in enumerate(config.devices):
        if device.ticket_source is not None:
            source = config.device(device.ticket_source)
            if source is None or source.kind != "ticket_dispenser":
                raise ConfigError(f"devices[{index}].ticket_source must name a configured ticket_dispenser")
            if source.unit != device.unit:
                raise ConfigError(f"devices[{index}].ticket_source belongs to another unit")
    return config


def parse_config(data: dict) -> BridgeConfig:
    try:
        config = msgspec.convert(data, BridgeConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"bridge config: {exc}") from None
    return check_config(config)


def load_config(path: str | Path) -> BridgeConfig:
    """Read and check a TOML (.toml) or JSON file."""
    return parse_config(read_document(path))


def read_document(path: str | Path) -> dict[str, Any]:
    """The config document in a TOML (.toml) or JSON file, not yet checked."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read bridge config {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else orjson.loads(raw)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    return data
