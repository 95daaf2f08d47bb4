"""A dialect-specific INSERT, for statements with ON CONFLICT (SQLite and PostgreSQL spell it alike)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(session: Session, table: Table):  # type: ignore[no-untyped-def]
    """For the few statements not on the hot path (which use plain SQL, see ingest/bulk_sql.py)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
