"""Multi-row INSERT statements written once per table and dialect, executed on the driver's cursor.

Ingest writes thousands of rows a second; building and compiling a SQLAlchemy statement for every
batch, and processing every parameter through it, cost more than the database work itself. The SQL
here is plain: SQLite and PostgreSQL both speak `INSERT ... ON CONFLICT` and `RETURNING`. Values still
pass through the column types' own bind processors, so they are stored exactly as the ORM would
store them.

- SQLite: `INSERT ... VALUES (?, ...), (?, ...)` in statements of up to ROWS_PER_STATEMENT rows.
- PostgreSQL: one statement per call, `INSERT ... SELECT * FROM unnest(%b::text[], ...)`, one array
  per column. psycopg parses a query's placeholders in Python and caches only short queries, so a
  VALUES list of thousands of placeholders was parsed again on every commit: most of the time ingest
  spent. The unnest query has one placeholder per column and is prepared once by the server; the
  arrays go in binary format, which psycopg writes about five times faster than text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Integer, LargeBinary, String, Table
from sqlalchemy.orm import Session

ROWS_PER_STATEMENT = 400  # SQLite: well under its 32 766 parameters with the widest table
# The PostgreSQL array type that carries a column's values, by the column's type.
_POSTGRES_ARRAYS = ((Boolean, "boolean[]"), (Integer, "bigint[]"), (LargeBinary, "bytea[]"), (DateTime, "timestamptz[]"), (Date, "date[]"), (String, "text[]"))


@dataclass(frozen=True)
class Inserted:
    inserted: int
    last_rowid: int | None


def execute_rows(
    session: Session, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]], tail: str, returning: bool = False
) -> list[tuple[Any, ...]]:
    """INSERT `rows` (each its values in the order of `columns`) into `table`, followed by `tail`
    (ON CONFLICT ..., RETURNING ...); return what RETURNING gives."""
    returned: list[tuple[Any, ...]] = []
    for cursor in _statements(session, table, columns, rows, tail):
        if returning:
            returned.extend(cursor.fetchall())
    return returned


def insert_counted(session: Session, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]], tail: str) -> list[Inserted]:
    """INSERT `rows` as `execute_rows` does; per statement, how many rows it inserted and the
    driver's `lastrowid` (SQLite: the rowid of the last row inserted)."""
    return [Inserted(cursor.rowcount, cursor.lastrowid) for cursor in _statements(session, table, columns, rows, tail)]


def _statements(session: Session, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]], tail: str) -> Iterator[Any]:
    """Execute the INSERT; after each statement, yield the cursor."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    processors = _processors(table, columns, dialect)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]  # the DBAPI connection is open inside this block
    try:
        if dialect.name == "postgresql":
            values = [list(column) for column in zip(*rows)]
            for index, process in processors:
                _process_runs(values[index], 0, 1, process)
            cursor.execute(_unnest_sql(table, columns, tail), values)
            yield cursor
            return
        head = _insert_head(table, columns)
        width = len(columns)
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for row in chunk:
                params.extend(row)
            for index, process in processors:
                _process_runs(params, index, width, process)
            cursor.execute(head + _values_sql(len(chunk), width) + " " + tail, params)
            yield cursor
    finally:
        cursor.close()


def _process_runs(values: list[Any], start: int, step: int, process: Callable[[Any], Any]) -> None:
    """Process values[start::step] in place. One received_at for every row, and days that repeat:
    processed once per run of equal values."""
    last_in: Any = None
    last_out: Any = None
    for index in range(start, len(values), step):
        value = values[index]
        if value is None:
            continue
        if value is not last_in and not (type(value) is date and value == last_in):
            last_in, last_out = value, process(value)
        values[index] = last_out


@lru_cache(maxsize=None)
def _processors(table: Table, columns: tuple[str, ...], dialect: Any) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(position, bind processor) of the columns whose values need one."""
    found = []
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        # LargeBinary's processor only wraps bytes in the driver's Binary, which both drivers take as
        # bytes anyway (a BLOB in SQLite, bytea in PostgreSQL): skipped, it was a call per event.
        process = None if isinstance(column_type, LargeBinary) else column_type.bind_processor(dialect)
        if process is not None:
            found.append((index, _with_driver_adapter(process, dialect.name)))
    return tuple(found)


def _with_driver_adapter(process: Callable[[Any], Any], dialect_name: str) -> Callable[[Any], Any]:
    """For SQLite, also apply the adapter sqlite3 would call on the value (datetimes become text):
    then it runs once per run of equal values, not once per row inside the driver."""
    if dialect_name != "sqlite":
        return process

    def processed_and_adapted(value: Any) -> Any:
        value = process(value)
        adapt = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
        return value if adapt is None else adapt(value)

    return processed_and_adapted


def _insert_head(table: Table, columns: tuple[str, ...]) -> str:
    return f'INSERT INTO "{table.name}" (' + ", ".join(f'"{c}"' for c in columns) + ")"


def _values_sql(count: int, width: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return " VALUES " + ", ".join([row] * count)


def _postgres_array(column_type: Any) -> str:
    column_type = getattr(column_type, "impl_instance", column_type)  # a TypeDecorator's own type
    for kind, array in _POSTGRES_ARRAYS:
        if isinstance(column_type, kind):
            return array
    raise TypeError(f"no PostgreSQL array type for {column_type!r}")


@lru_cache(maxsize=None)
def _unnest_sql(table: Table, columns: tuple[str, ...], tail: str) -> str:
    arrays = ", ".join(f"%b::{_postgres_array(table.c[name].type)}" for name in columns)  # %b: binary, 5x faster to send
    return f"{_insert_head(table, columns)} SELECT * FROM unnest({arrays}) {tail}"


def earliest_wins_clause(table: str, stamps: Sequence[str], followers: dict[str, tuple[str, ...]]) -> str:
    """`SET` assignments keeping, per stamp column, the smaller stamp key and the values that came with it."""
    parts = []
    for name in stamps:
        new, old = f'excluded."{name}"', f'"{table}"."{name}"'
        wins = f"{new} IS NOT NULL AND ({old} IS NULL OR {new} < {old})"
        for column in (name, *followers.get(name, ())):
            parts.append(f'"{column}" = CASE WHEN {wins} THEN excluded."{column}" ELSE "{table}"."{column}" END')
    return ", ".join(parts)
