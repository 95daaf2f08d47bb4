"""`column IN (values)` with the values as one bound parameter on PostgreSQL, for the long lists of units a region reads.

SQLAlchemy renders `column.in_(values)` as one placeholder per value, at every execution, and psycopg
then parses a query that is too long for its cache of parsed queries: on PostgreSQL a statement asking
for a region's 230 units twice cost 3.0 ms, 1.1 ms with the units as one array (`= ANY(...)`). A page
and a live update of a region run several such statements. SQLite keeps the placeholders (`IN (?, ?,
...)`), its parameters cost little: one JSON text (`IN (SELECT value FROM json_each(?))`) saved 0.4 ms
for 230 units, and was tried and left (with the "= 1" below still after it, one unit's open cases took
18 ms instead of 1, and a Klinikvy 110 ms instead of 45).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator


class _Values(TypeDecorator[list[str]]):
    """A list of strings bound as one parameter: an array (only PostgreSQL renders it)."""

    impl = ARRAY(String)
    cache_ok = True

    def process_bind_param(self, value: Iterable[str] | None, dialect: Dialect) -> Any:
        if value is None:
            raise ValueError("one_of needs the values, not None")
        return list(value)


class OneOf(ColumnElement[bool]):
    """True where `column` is one of the bound values (see `one_of`): `as_array` is bound on
    PostgreSQL, `as_list` (an expanding parameter) elsewhere; only the one rendered is sent."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison: no "= 1" after it where booleans are not native (SQLite kept it from seeking by unit)
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("as_array", InternalTraversal.dp_clauseelement),
        ("as_list", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], as_array: ColumnElement[Any], as_list: ColumnElement[Any]) -> None:
        self.column = column
        self.as_array = as_array
        self.as_list = as_list


@compiles(OneOf)
def _in_list(element: OneOf, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} IN {compiler.process(element.as_list, **kw)}"  # the expanded list brings its parentheses


@compiles(OneOf, "postgresql")
def _any_of_array(element: OneOf, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.as_array, **kw)})"


def one_of(column: Any, values: Iterable[str] | str) -> OneOf:
    """`column` among `values` (strings), or among the list bound to the parameter named `values` when
    the statement is executed (for statements built once)."""
    if isinstance(values, str):
        return OneOf(column, bindparam(values, type_=_Values()), bindparam(values, expanding=True))
    listed = list(values)
    return OneOf(column, bindparam(None, listed, type_=_Values(), unique=True), bindparam(None, listed, expanding=True, unique=True))
