"""Small SQL helpers shared by the jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session, table: Table) -> Any:
    """An INSERT that offers `on_conflict_do_nothing/update` on the session's dialect (SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
