"""Multi-row INSERT statements written once per table and dialect, executed on the driver's cursor.

Ingest writes thousands of rows a second; building and compiling a SQLAlchemy statement for every
batch, and processing every parameter through it, cost more than the database work itself. The SQL
here is plain and portable: SQLite and PostgreSQL both speak `INSERT ... ON CONFLICT` and `RETURNING`.
Values still pass through the column types' own bind processors, so they are stored exactly as the
ORM would store them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

ROWS_PER_STATEMENT = 400  # well under SQLite's 32 766 parameters with the widest table


def _placeholder(dialect_name: str) -> str:
    return "%s" if dialect_name == "postgresql" else "?"


@lru_cache(maxsize=None)
def _processors(table: Table, columns: tuple[str, ...], dialect: Any) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(table.c[name].type.bind_processor(dialect) for name in columns)


def _values_sql(count: int, width: int, mark: str) -> str:
    row = "(" + ", ".join([mark] * width) + ")"
    return ", ".join([row] * count)


def execute_rows(
    session: Session, table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]], tail: str, returning: bool = False
) -> list[tuple[Any, ...]]:
    """INSERT `rows` into `table` followed by `tail` (ON CONFLICT ..., RETURNING ...); return what RETURNING gives."""
    if not rows:
        return []
    connection = session.connection()
    dialect = connection.dialect
    processors = _processors(table, columns, dialect)
    processed = [(index, process) for index, process in enumerate(processors) if process is not None]
    values_of = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    mark = _placeholder(dialect.name)
    head = f'INSERT INTO "{table.name}" (' + ", ".join(f'"{c}"' for c in columns) + ") VALUES "
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    returned: list[tuple[Any, ...]] = []
    try:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for row in chunk:
                params.extend(values_of(row))
            width = len(columns)
            for column, process in processed:
                # One received_at for every row, and days that repeat: processed once per run of them.
                last_in: Any = None
                last_out: Any = None
                for index in range(column, len(params), width):
                    value = params[index]
                    if value is None:
                        continue
                    if value is not last_in and not (type(value) is date and value == last_in):
                        last_in, last_out = value, process(value)
                    params[index] = last_out
            cursor.execute(head + _values_sql(len(chunk), len(columns), mark) + " " + tail, params)
            if returning:
                returned.extend(tuple(r) for r in cursor.fetchall())
    finally:
        cursor.close()
    return returned


def earliest_wins_clause(table: str, stamps: Sequence[str], followers: dict[str, tuple[str, ...]]) -> str:
    """`SET` assignments keeping, per stamp column, the smaller stamp key and the values that came with it."""
    parts = []
    for name in stamps:
        new, old = f'excluded."{name}"', f'"{table}"."{name}"'
        wins = f"{new} IS NOT NULL AND ({old} IS NULL OR {new} < {old})"
        for column in (name, *followers.get(name, ())):
            parts.append(f'"{column}" = CASE WHEN {wins} THEN excluded."{column}" ELSE "{table}"."{column}" END')
    return ", ".join(parts)
