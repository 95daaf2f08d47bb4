"""The remote config versions pushed to each device: what was sent, by whom, when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime


class DeviceConfigVersion(SQLModel, table=True):
    """One pushed version. `seq` numbers a device's pushes 1, 2, …: two pushes racing for the same
    number cannot both be recorded (the primary key), so the history never forks."""

    __tablename__ = "device_config_versions"

    unit: str = Field(primary_key=True, max_length=40)
    device: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    version: str = Field(max_length=64)
    sections: str = Field(sa_column=Column(Text, nullable=False))  # the config sections as JSON
    pushed_by: str = Field(max_length=200)  # the token's name, or who ran the admin command
    pushed_at: datetime = Field(sa_type=UtcDateTime)
