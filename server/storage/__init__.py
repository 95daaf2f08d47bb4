"""Storage: SQLModel tables, engines for SQLite and PostgreSQL, versioned migrations."""

from .database import make_engine, make_sessions, migrate

__all__ = ["make_engine", "make_sessions", "migrate"]
