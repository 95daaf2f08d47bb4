"""Storage: SQLModel tables, engines for SQLite and PostgreSQL, versioned migrations."""

from .database import make_engine, make_sessions
from .schema_version import SchemaMismatch, check_schema, migrate, schema_state

__all__ = ["SchemaMismatch", "check_schema", "make_engine", "make_sessions", "migrate", "schema_state"]
