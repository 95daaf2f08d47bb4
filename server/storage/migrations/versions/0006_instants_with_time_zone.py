"""instants with time zone: every datetime column becomes timestamptz on PostgreSQL

Revision ID: 0006
Revises: 0005

Values were written as UTC without an offset, so `AT TIME ZONE 'UTC'` reads them as what they were.
SQLite has no time-zone type; its text stays as it is and `storage.utc_datetime.UtcDateTime` reads it as UTC.
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INSTANTS = (
    ("device_config_versions", "pushed_at", False),
    ("enrollment_codes", "created_at", False),
    ("enrollment_codes", "expires_at", False),
    ("enrollment_codes", "redeemed_at", True),
    ("enrollment_failures", "at", False),
    ("alerts", "created_at", False),
    ("alerts", "cleared_at", True),
    ("audits", "checked_at", False),
    ("sweep_marks", "swept_at", False),
    ("api_tokens", "created_at", False),
    ("api_tokens", "revoked_at", True),
    ("devices", "registered_at", False),
    ("devices", "retired_at", True),
    ("devices", "last_seen_at", True),
    ("leases", "expires_at", False),
    ("events", "received_at", False),
    ("unit_activity", "last_received_at", True),
    ("stored_figures", "computed_at", False),
    ("dead_letters", "received_at", False),
)


def _convert(with_time_zone: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in INSTANTS:
        using = f"{column} AT TIME ZONE 'UTC'"  # naive UTC -> timestamptz, or timestamptz -> naive UTC
        op.alter_column(table, column, type_=sa.DateTime(timezone=with_time_zone), existing_nullable=nullable,
                        postgresql_using=using)


def upgrade() -> None:
    _convert(with_time_zone=True)


def downgrade() -> None:
    _convert(with_time_zone=False)
