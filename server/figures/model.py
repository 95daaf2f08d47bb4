"""The figure as the API publishes it (SPEC 2.5 plus `definition_version` and `data`): typed, so that the
OpenAPI document shows it and a test can hold every answer to it.

The field order is the wire order: a figure validated here and dumped again gives the API's bytes."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field

from ..metrics import MetricName


class _Details(BaseModel):
    model_config = ConfigDict(extra="forbid")


SmallN = Annotated[bool, Field(description="fewer than 20 in the denominator: suppressed in public exports")]


class TelephoneDetails(_Details):
    answered: int
    callback_same_day: int
    callback_later: int
    callback_pending: int
    abandoned: int
    rejected: int = Field(description="calls rejected on a date in the period (queue full or closed)")
    strict_share: float | None = Field(description="numerator / (denominator + rejected)")
    small_n: SmallN


class AssessmentDetails(_Details):
    pending: int = Field(description="in-scope open cases whose deadline has not passed at as_of")
    overdue_open: int = Field(description="in-scope open cases past their deadline at as_of")
    projected_share: float | None = Field(description="numerator / (denominator + overdue_open)")
    orphans: int = Field(description="assessments without a contact")
    invalid: int = Field(description="assessments dated before their contact")
    not_listed: int
    excluded: int
    by_profession: dict[str, int]
    small_n: SmallN


class FixedDoctorDetails(_Details):
    doctors_active: int | None
    max_list_size: int | None
    mean_list_size: float | None
    snapshot_at: str | None = Field(description="the listing snapshot used (local time with offset)")
    small_n: SmallN


class ContinuityDetails(_Details):
    coc_doctor_mean: float | None = Field(description="mean Bice–Boxerman COC over eligible patients, 18-month window")
    eligible_patients: int
    small_n: SmallN


Details = Annotated[
    Union[TelephoneDetails, AssessmentDetails, FixedDoctorDetails, ContinuityDetails],
    Field(description="per metric: telephone, assessment, fixed_doctor or continuity details"),
]


class Freshness(BaseModel):
    """How fresh and complete the data behind the figure are: silence is "no data", never "compliant"."""

    model_config = ConfigDict(extra="forbid")

    no_data: bool
    last_event_at: str | None
    last_received_at: str | None
    devices: int
    devices_offline: list[str]
    devices_silent: list[str]


class Figure(BaseModel):
    """One figure: a unit, a metric and a period, as known at a moment (SPEC 2.5)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    unit: str
    metric: MetricName
    from_: str = Field(alias="from", description="first local date of the period")
    to: str = Field(description="last local date of the period")
    numerator: int
    denominator: int
    share: float | None = Field(description="numerator / denominator rounded half up to 4 decimals; null when the denominator is 0")
    target: float | None
    meets_target: bool | None = Field(description="the exact ratio against the target; null without a share or a target")
    details: Details
    definition_version: int = Field(description="the version of the metric's definition this figure follows")
    data: Freshness


class OwnershipPart(BaseModel):
    """The region's units of one ownership, summed."""

    ownership: str = Field(description="offentlig, privat, or okänd where the registry does not say")
    units: int
    numerator: int
    denominator: int
    share: float | None


class Benchmark(BaseModel):
    label: str
    value: float


class RegionFigure(BaseModel):
    """The whole region: sums of the units' numerators and denominators (not a mean of their shares)."""

    model_config = ConfigDict(populate_by_name=True)

    region: str
    metric: MetricName
    from_: str = Field(alias="from")
    to: str
    numerator: int
    denominator: int
    share: float | None
    target: float | None = Field(description="the region's own target for the metric, when one is set")
    meets_target: bool | None
    small_n: bool
    units: int
    units_without_data: int = Field(description="registered units with no data behind the period's figures")
    by_ownership: list[OwnershipPart]
    comparison: Benchmark | None = Field(description='the value the region compares with, e.g. "Riket"')
    definition_version: int
