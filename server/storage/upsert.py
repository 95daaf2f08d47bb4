"""A dialect-specific INSERT, for statements with ON CONFLICT (SQLite and PostgreSQL spell it alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(session: Session, table: Table) -> Any:
    """An INSERT offering `on_conflict_do_nothing/update` on the session's dialect, for the few statements
    not on the hot path (which use plain SQL, see ingest/bulk_sql.py). Any: the two dialects' Insert types."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
