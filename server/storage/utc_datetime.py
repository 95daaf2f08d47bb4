"""The one column type for instants: timezone-aware in, timezone-aware (UTC) out, on both backends.

PostgreSQL keeps them as `timestamptz` (migration 0006). SQLite has no such type: SQLAlchemy writes UTC
text without an offset, so this type is the single place that reads it back as UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("an instant stored in the database needs a time zone (naive datetime given)")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: the UTC text written above
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
