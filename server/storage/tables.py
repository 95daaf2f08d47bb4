"""The database tables. Metric state is stored as the pure engine keeps it: per call and per case
the earliest event of each kind, as a sortable stamp key; see `stamp_keys`."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime

# Stamp keys compare byte by byte: PostgreSQL must not apply a language collation to them.
StampKey = String(96).with_variant(String(96, collation="C"), "postgresql")


def stamp_column(index: bool = False) -> Column:
    return Column(StampKey, nullable=True, index=index)


class StoredEvent(SQLModel, table=True):
    """The archive: every distinct event once, as validated (unknown fields dropped)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("unit", "event_id", name="uq_events_unit_event_id"),)

    # INTEGER on SQLite, where only that type becomes the auto-incrementing rowid.
    seq: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    unit: str = Field(max_length=40)
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=32)
    at_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    device: str | None = Field(default=None, max_length=64)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(sa_type=UtcDateTime)


# The stamp columns of a call and a case: the earliest (instant, event id) key of each kind of event.
CALL_STAMPS = ("offered", "answered", "callback_booked", "callback_made", "callback_reached", "abandoned", "rejected")
CASE_STAMPS = ("contact", "assessed", "excluded", "cancelled")


class CallRow(SQLModel, table=True):
    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_unit_offered_day", "unit", "offered_day"), Index("ix_calls_unit_rejected_day", "unit", "rejected_day"))

    unit: str = Field(primary_key=True, max_length=40)
    call: str = Field(primary_key=True, max_length=64)
    offered: str | None = Field(default=None, sa_column=stamp_column())
    offered_day: date | None = None
    answered: str | None = Field(default=None, sa_column=stamp_column())
    callback_booked: str | None = Field(default=None, sa_column=stamp_column())
    callback_made: str | None = Field(default=None, sa_column=stamp_column())
    callback_reached: str | None = Field(default=None, sa_column=stamp_column())
    abandoned: str | None = Field(default=None, sa_column=stamp_column())
    rejected: str | None = Field(default=None, sa_column=stamp_column())
    rejected_day: date | None = None
    # The unit's data version of the last commit that merged into this row (`UnitActivity.row_versions`).
    version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_unit_assessed_day", "unit", "assessed_day"),
        Index("ix_cases_unit_contact_day", "unit", "contact_day"),
        Index("ix_cases_unit_assessed", "unit", "assessed"),  # the cases open at a moment
    )

    unit: str = Field(primary_key=True, max_length=40)
    case: str = Field(primary_key=True, max_length=64)
    contact: str | None = Field(default=None, sa_column=stamp_column())
    contact_day: date | None = None
    listed: bool | None = None
    assessed: str | None = Field(default=None, sa_column=stamp_column())
    assessed_day: date | None = None
    profession: str | None = Field(default=None, max_length=32)
    excluded: str | None = Field(default=None, sa_column=stamp_column())
    cancelled: str | None = Field(default=None, sa_column=stamp_column())
    version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # as `CallRow.version`


class SnapshotRow(SQLModel, table=True):
    __tablename__ = "listing_snapshots"

    unit: str = Field(primary_key=True, max_length=40)
    stamp: str = Field(sa_column=Column(StampKey, primary_key=True))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class DoctorVisitRow(SQLModel, table=True):
    """Doctor visits of listed patients: the only visits any figure uses."""

    __tablename__ = "doctor_visits"
    # By patient: continuity's 18-month sums read only this index, in the order they group by
    # (server/figures/continuity_sums.py).
    __table_args__ = (
        Index("ix_doctor_visits_unit_day", "unit", "day"),
        Index("ix_doctor_visits_unit_patient", "unit", "patient", "practitioner", "day", "at_us"),
    )

    unit: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(primary_key=True, max_length=64)
    at_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    day: date
    patient: str = Field(max_length=64)
    practitioner: str = Field(max_length=64)
    fixed_doctor: str | None = Field(default=None, max_length=64)


class UnitActivity(SQLModel, table=True):
    """Per unit: a version bumped by every commit that changed its data, and how fresh the data is."""

    __tablename__ = "unit_activity"

    unit: str = Field(primary_key=True, max_length=40)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # Bumped with `version` only by commits that also set the `version` of the call and case rows they
    # merge (from schema 0015 on). While both moved by the same amount, every commit in between did, so
    # the rows changed since a version are exactly those whose `version` is newer (figures/kept_ledgers.py).
    row_versions: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    last_event_at_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_received_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class UnitDayVersion(SQLModel, table=True):
    """Per unit and UTC date: the unit's data version of the last commit that stored an event of that date,
    and per metric the version of the last commit that stored an event of that metric there.

    A figure "as known at T" depends only on its metric's events at or before T, so it stays valid while
    no row of a date up to T's has a newer version for that metric than the one it was computed at:
    today's events leave last month's figures valid, a late event of last month does not, and calls
    leave continuity's figures valid (see server/figures/store.py, "Dependency versions").

    The metric columns are exact only where `metrics_version` equals `version`: a row that a release
    before them wrote (`metrics_version` null), or bumped since (`version` newer), counts `version` for
    every metric, so processes of both releases can run side by side during a rolling upgrade."""

    __tablename__ = "unit_day_versions"

    unit: str = Field(primary_key=True, max_length=40)
    day: date = Field(primary_key=True)
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    metrics_version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    telephone_version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    assessment_version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    fixed_doctor_version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    continuity_version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class FigureDayPart(SQLModel, table=True):
    """Per unit, metric (telephone, assessment) and local day: what that day adds to the metric's figures.

    Ingest sets `version` to the unit's data version of each commit that changes a call or case row
    anchored at the day (its offer or rejection day; its contact or assessment day), before and after
    the change. A reader that computes the day's parts (as known now) from the rows files them with
    the version it read before reading the rows; they are valid while both that version and the
    settings hash are current (server/figures/day_parts.py). No row: nothing is anchored at that day."""

    __tablename__ = "figure_day_parts"

    unit: str = Field(primary_key=True, max_length=40)
    metric: str = Field(primary_key=True, max_length=16)
    day: date = Field(primary_key=True)
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    parts_version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    settings: str | None = Field(default=None, max_length=64)  # sha256 of the settings stamp
    latest_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class StoredFigure(SQLModel, table=True):
    """A computed figure (as known at the end of its period), shared by every server process and kept
    across restarts; valid while its unit's settings stamp and dependency version are the ones stored."""

    __tablename__ = "stored_figures"

    unit: str = Field(primary_key=True, max_length=40)
    metric: str = Field(primary_key=True, max_length=16)
    period_from: date = Field(primary_key=True)
    period_to: date = Field(primary_key=True)
    settings: str = Field(max_length=64)  # sha256 of the settings stamp
    version: int = Field(sa_column=Column(BigInteger, nullable=False))  # 0: no event up to the period's end
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    computed_at: datetime = Field(sa_type=UtcDateTime)


class DeadLetter(SQLModel, table=True):
    """A refused event or payload: why, from where, when. Never its content."""

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(index=True, sa_type=UtcDateTime)
    source: str = Field(max_length=16)  # mqtt | http
    unit: str | None = Field(default=None, max_length=40, index=True)
    device: str | None = Field(default=None, max_length=64)
    event_id: str | None = Field(default=None, max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    payload_sha256: str | None = Field(default=None, max_length=64)
    payload_bytes: int | None = None
