"""Which database errors are worth retrying, and which mean that what was written is at fault.

Transient: the database is away or busy (connection lost or refused, shutting down, too many
connections, the pool exhausted, a deadlock or serialization failure, SQLite's "database is locked").
Retrying the same work later succeeds. Anything else (a value the column cannot hold, a constraint, a
fault of ours) fails again however often it is retried: the caller must set the bad input aside.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator intervention
# (admin shutdown, crash shutdown, cannot connect now), 58 system error; and single codes for
# serialization_failure, deadlock_detected and lock_not_available.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_CODES = frozenset({"40001", "40P01", "55P03"})


def _driver_error(exc: BaseException) -> BaseException | None:
    """The DB-API driver's exception: wrapped by SQLAlchemy, or raw (the bulk writes use the driver's
    cursor directly, server/ingest/bulk_sql.py)."""
    if isinstance(exc, DBAPIError):
        return exc.orig
    if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg"):
        return exc
    return None


def is_database_error(exc: BaseException) -> bool:
    """An error raised by the database (its text may quote rows: never log it, nor its traceback)."""
    return _driver_error(exc) is not None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (PoolTimeout, DisconnectionError)):
        return True
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))):
        return True
    orig = _driver_error(exc)
    if orig is None:
        return False
    if type(orig).__name__ in ("OperationalError", "InterfaceError"):  # psycopg's and sqlite3's: connection, I/O, locks
        return True
    code = getattr(orig, "sqlstate", None) or ""
    return code in _TRANSIENT_CODES or code[:2] in _TRANSIENT_CLASSES or "database is locked" in str(orig)


def error_kind(exc: BaseException) -> str:
    """The error's class and SQLSTATE, never its text (which would quote the rows)."""
    orig = _driver_error(exc) or exc
    code = getattr(orig, "sqlstate", None)
    return f"{type(orig).__name__}{' ' + code if code else ''}"
