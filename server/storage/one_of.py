"""`column IN (values)` with the values as one bound parameter, for the long lists of units a region reads.

SQLAlchemy renders `column.in_(values)` as one placeholder per value, at every execution, and psycopg
then parses a query that is too long for its cache of parsed queries: on PostgreSQL a statement asking
for a region's 230 units twice cost 3.0 ms, 1.1 ms with the units as one array (`= ANY(...)`); on
SQLite 0.8 ms, 0.4 ms with them as one JSON text (`IN (SELECT value FROM json_each(...))`). A page and a
live update of a region run several such statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Boolean, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine


class _Values(TypeDecorator[list[str]]):
    """A list of strings bound as one parameter: an array on PostgreSQL, JSON text elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(ARRAY(String) if dialect.name == "postgresql" else String())

    def process_bind_param(self, value: Iterable[str] | None, dialect: Dialect) -> Any:
        if value is None:
            raise ValueError("one_of needs the values, not None")
        values = list(value)
        return values if dialect.name == "postgresql" else orjson.dumps(values).decode()


class OneOf(ColumnElement[bool]):
    """True where `column` is one of the bound values (see `one_of`)."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("values", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any], values: ColumnElement[Any]) -> None:
        self.column = column
        self.values = values


@compiles(OneOf)
def _json_each(element: OneOf, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} IN (SELECT value FROM json_each({compiler.process(element.values, **kw)}))"


@compiles(OneOf, "postgresql")
def _any_of_array(element: OneOf, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.values, **kw)})"


def one_of(column: Any, values: Iterable[str] | str) -> OneOf:
    """`column` among `values` (strings), or among the list bound to the parameter named `values` when
    the statement is executed (for statements built once)."""
    if isinstance(values, str):
        return OneOf(column, bindparam(values, type_=_Values()))
    return OneOf(column, bindparam(None, list(values), type_=_Values(), unique=True))
