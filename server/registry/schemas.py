"""What the unit registry takes and shows: Create / Update / Public schemas; the table models stay inside."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from vardkoll.protocol.field_rules import HSA_ID_RULE, is_hsa_id
from vardkoll.protocol.local_time_fields import OpeningHours, TimeZoneName as TimeZone

from ..metrics import MetricName
from ..storage.registry_tables import TargetRow, UnitRow


def _hsa_id(value: str) -> str:
    if not is_hsa_id(value):
        raise ValueError(HSA_ID_RULE)
    return value


HsaId = Annotated[str, AfterValidator(_hsa_id)]
Ownership = Literal["offentlig", "privat"]
MunicipalityCode = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="SCB's four-digit code, e.g. 0380 (Uppsala)")]
ListedPatients = Annotated[int, Field(ge=0, le=10_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Region = Annotated[str, Field(min_length=1, max_length=100)]


class UnitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: HsaId
    name: Name
    region: Region
    time_zone: TimeZone = "Europe/Stockholm"
    opening_hours: OpeningHours | None = None  # null: no opening hours, every offered call counts
    unreached_callback_counts: bool = True
    ownership: Ownership | None = None
    municipality_code: MunicipalityCode | None = None
    listed_patients: ListedPatients | None = None


class UnitUpdate(BaseModel):
    """Only the fields sent change; `opening_hours: null` removes the opening hours."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    region: Region | None = None
    time_zone: TimeZone | None = None
    opening_hours: OpeningHours | None = None
    unreached_callback_counts: bool | None = None
    ownership: Ownership | None = None
    municipality_code: MunicipalityCode | None = None
    listed_patients: ListedPatients | None = None

    @model_validator(mode="after")
    def _required_fields_stay(self) -> "UnitUpdate":
        for name in ("name", "region", "time_zone", "unreached_callback_counts"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed, only changed")
        return self


class UnitPublic(BaseModel):
    unit: str
    name: str
    region: str
    time_zone: str
    opening_hours: dict[str, list[tuple[str, str]]] | None
    unreached_callback_counts: bool
    ownership: Ownership | None
    municipality_code: str | None
    listed_patients: int | None

    @classmethod
    def of(cls, row: UnitRow) -> "UnitPublic":
        hours = json.loads(row.opening_hours) if row.opening_hours else None
        return cls(
            unit=row.unit,
            name=row.name,
            region=row.region,
            time_zone=row.time_zone,
            opening_hours=hours,
            unreached_callback_counts=row.unreached_callback_counts,
            ownership=row.ownership,  # type: ignore[arg-type]  # stored only through the Literal above
            municipality_code=row.municipality_code,
            listed_patients=row.listed_patients,
        )


class TargetCreate(BaseModel):
    """A target for one metric, valid from `valid_from` through `valid_to` (open-ended when null)."""

    model_config = ConfigDict(extra="forbid")

    metric: MetricName
    target: Annotated[float | None, Field(ge=0, le=1, description="a share such as 0.9; null: no target in this period")]
    valid_from: date
    valid_to: date | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> "TargetCreate":
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to ({self.valid_to}) is before valid_from ({self.valid_from})")
        return self


class TargetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit: str
    metric: str
    target: float | None
    valid_from: date
    valid_to: date | None

    @classmethod
    def of(cls, row: TargetRow) -> "TargetPublic":
        return cls.model_validate(row)


BenchmarkKind = Literal["target", "comparison"]


class BenchmarkCreate(BaseModel):
    """A region's own target for a metric, or a value to compare with (e.g. "Riket": the national figure)."""

    model_config = ConfigDict(extra="forbid")

    metric: MetricName
    kind: BenchmarkKind
    label: Annotated[str, Field(min_length=1, max_length=100, description='shown beside the figure, e.g. "Riket"')]
    value: Annotated[float, Field(ge=0, le=1, description="a share such as 0.89")]
    valid_from: date
    valid_to: date | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> "BenchmarkCreate":
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to ({self.valid_to}) is before valid_from ({self.valid_from})")
        return self


class BenchmarkPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    region: str
    metric: str
    kind: str
    label: str
    value: float
    valid_from: date
    valid_to: date | None
