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

from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from vardkoll.protocol.field_rules import HSA_ID_RULE, is_hsa_id
from vardkoll.protocol.local_time import spans_by_weekday
from vardkoll.protocol.local_time_fields import OpeningHours, TimeZoneName

from ..metrics import DEFAULT_TARGETS, MetricName, UnitConfig


class UnitSettingsError(ValueError):
    pass


class UnitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: TimeZoneName | None = None
    opening_hours: OpeningHours | None = None
    targets: dict[MetricName, float | None] | None = None
    unreached_callback_counts: bool | None = None

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
            hours = spans_by_weekday(self.opening_hours)
        return UnitConfig(
            time_zone=self.time_zone or config.time_zone,
            targets={**DEFAULT_TARGETS, **(self.targets or {})},
            opening_hours=hours,
            unreached_callback_counts=(config.unreached_callback_counts if self.unreached_callback_counts is None else self.unreached_callback_counts),
        )


class SettingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: UnitSettings = UnitSettings()
    units: dict[str, UnitSettings] = {}

    @field_validator("units")
    @classmethod
    def _units_are_hsa_ids(cls, value: dict[str, UnitSettings]) -> dict[str, UnitSettings]:
        for unit in value:
            if not is_hsa_id(unit):
                raise ValueError(f"{unit[:40]!r} is not an HSA-id; a unit {HSA_ID_RULE}")
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
