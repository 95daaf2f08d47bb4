"""Unit settings from a JSON file, for `vardkoll replay --units FILE`.

    {
      "default": {"unreached_callback_counts": true},
      "units": {
        "SE2321000016-VC01": {
          "time_zone": "Europe/Stockholm",
          "opening_hours": {"mon": [["08:00", "12:00"], ["13:00", "17:00"]], "tue": [["08:00", "17:00"]]},
          "targets": {"telephone": 0.85},
          "unreached_callback_counts": false
        }
      }
    }

A unit's entry overrides the default entry field by field; unlisted units use the default.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Callable, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from vardkoll.protocol.events import HSA_ID_PATTERN

from ..metrics import DEFAULT_TARGETS, UnitConfig

_HSA_ID = re.compile(HSA_ID_PATTERN)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class UnitSettingsError(ValueError):
    pass


class UnitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: str | None = None
    opening_hours: dict[Weekday, list[tuple[time, time]]] | None = None
    targets: dict[Literal["telephone", "assessment", "fixed_doctor", "continuity"], float | None] | None = None
    unreached_callback_counts: bool | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("opening_hours")
    @classmethod
    def _spans_in_order(cls, value: dict[str, list[tuple[time, time]]] | None) -> dict | None:
        for day, spans in (value or {}).items():
            for start, end in spans:
                if end <= start:
                    raise ValueError(f"{day}: opening span {start}–{end} ends before it starts")
        return value

    def over(self, base: "UnitSettings") -> "UnitSettings":
        """These settings on top of `base`, field by field; targets metric by metric."""
        merged = base.model_copy(update=self.model_dump(exclude_none=True))
        if base.targets and self.targets:
            merged.targets = {**base.targets, **self.targets}
        return merged

    def to_config(self) -> UnitConfig:
        config = UnitConfig()
        hours = None
        if self.opening_hours is not None:
            hours = {WEEKDAYS.index(day): tuple(spans) for day, spans in self.opening_hours.items()}
        return UnitConfig(
            time_zone=self.time_zone or config.time_zone,
            targets={**DEFAULT_TARGETS, **(self.targets or {})},
            opening_hours=hours,
            unreached_callback_counts=(
                config.unreached_callback_counts if self.unreached_callback_counts is None else self.unreached_callback_counts
            ),
        )


class SettingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: UnitSettings = UnitSettings()
    units: dict[str, UnitSettings] = {}

    @field_validator("units")
    @classmethod
    def _units_are_hsa_ids(cls, value: dict[str, UnitSettings]) -> dict[str, UnitSettings]:
        for unit in value:
            if not _HSA_ID.search(unit):
                raise ValueError(f"{unit!r} is not an HSA-id")
        return value


def load_unit_settings(path: Path) -> Callable[[str], UnitConfig]:
    try:
        parsed = SettingsFile.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise UnitSettingsError(f"cannot read unit settings {path}: {exc.strerror}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UnitSettingsError(f"unit settings {path} are not valid: {problems}") from None
    default = parsed.default.to_config()
    configs = {unit: settings.over(parsed.default).to_config() for unit, settings in parsed.units.items()}
    return lambda unit: configs.get(unit, default)
