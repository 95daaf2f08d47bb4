"""The report as the API publishes it, typed for the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Count = int | None  # None: hidden in the public variant (fewer than 20), or not a count of this line


class ReportLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str
    name: str
    ownership: str | None
    municipality_code: str | None
    section: Literal["telephone", "assessment", "fixed_doctor"]
    group: Literal["", "doctor", "other_licensed", "all"] = Field(description="assessment: the profession group")
    form: Literal["", "physical", "phone", "video", "chat", "letter", "home", "unknown", "all"] = Field(
        description="assessment: the form of the first assessment"
    )
    calls: Count = Field(None, description="telephone: calls offered in scope")
    same_day: Count = Field(None, description="telephone: of them, contact the same day")
    completed: Count = Field(None, description="assessment: completed first contacts (first assessment in the month)")
    wait_0: Count = Field(None, description="assessment: of them, assessed on the contact day")
    wait_0_3: Count = Field(None, description="assessment: within 0–3 days")
    wait_0_7: Count = Field(None, description="assessment: within 0–7 days")
    excluded: Count = Field(None, description="assessment (the unit's whole line): cases excluded (patient's choice, medical)")
    listed: Count = Field(None, description="fixed_doctor: listed patients")
    named_doctor: Count = Field(None, description="fixed_doctor: of them, with a named fixed doctor")
    share: float | None = Field(description="same_day/calls, wait_0_3/completed or named_doctor/listed, 4 decimals")
    definition_version: int
    as_known_at: datetime = Field(description="only events at or before this instant count: the month's last instant")
    suppressed: list[str] = Field(description="the fields hidden in the public variant (fewer than 20, or would give one back)")


class MonthlyReport(BaseModel):
    region: str
    month: str = Field(description="YYYY-MM")
    from_: date = Field(alias="from")
    to: date
    version: int
    made_at: datetime
    as_known_at: datetime
    variant: Literal["public", "internal"]
    definition_versions: dict[str, int]
    lines: list[ReportLine]


class ReportVersion(BaseModel):
    version: int
    made_at: datetime
    checked_at: datetime = Field(description="the last time the job found this version current")
    digest: str = Field(description="sha256 of the report's lines")


class MonthKept(BaseModel):
    month: str = Field(description="YYYY-MM")
    latest_version: int


class CellChange(BaseModel):
    unit: str
    section: str
    group: str
    form: str
    field: str
    before: float | int | None
    after: float | int | None


class ReportDiff(BaseModel):
    region: str
    month: str
    variant: Literal["public", "internal"]
    from_version: int
    to_version: int
    changes: list[CellChange]
