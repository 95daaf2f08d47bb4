"""`one_of` selects exactly the rows `in_` selects, on both backends, also when one compiled statement is
run again with other values (SQLAlchemy's statement cache must not keep the first run's values)."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select

from vardkoll.server.storage import make_engine, make_sessions, migrate
from vardkoll.server.storage.one_of import one_of
from vardkoll.server.storage.registry_tables import UnitRow

UNITS = [f"SE2321000016-VC{n:02}" for n in range(1, 8)] + ["SE2321000016-VC'08", 'SE2321000016-"VC09"', "SE2321000016-Vårdcentral"]


@pytest.fixture
def sessions(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    made = make_sessions(engine)
    with made.begin() as session:
        session.add_all(UnitRow(unit=unit, name=f"Enhet {n}", region="Region Test") for n, unit in enumerate(UNITS))
    yield made
    engine.dispose()


@pytest.mark.parametrize(
    "asked",
    [
        UNITS[:3],
        UNITS[2:],
        [UNITS[5]],
        [],
        ["SE2321000016-VC99", UNITS[0]],  # one not there
        UNITS[-3:],  # quotes and a non-ASCII letter survive the binding
        [UNITS[1], UNITS[1]],  # a repeated value selects its row once
    ],
)
def test_the_rows_of_exactly_the_asked_values(sessions, asked):
    with sessions() as session:
        found = session.scalars(select(UnitRow.unit).where(one_of(UnitRow.unit, asked)).order_by(UnitRow.unit)).all()
        expected = session.scalars(select(UnitRow.unit).where(UnitRow.unit.in_(asked)).order_by(UnitRow.unit)).all()
    assert found == expected == sorted(set(asked) & set(UNITS))


def test_a_statement_run_again_with_other_values_gives_their_rows(sessions):
    with sessions() as session:
        for asked in (UNITS[:2], UNITS[4:6], UNITS[:2] + UNITS[-1:]):
            # The same shape each time: the second and third runs come from the compiled statement cache.
            assert set(session.scalars(select(UnitRow.unit).where(one_of(UnitRow.unit, asked)))) == set(asked)


def test_a_statement_built_once_binds_its_values_when_run(sessions):
    statement = select(UnitRow.unit).where(one_of(UnitRow.unit, "units"), UnitRow.region == bindparam("region"))
    with sessions() as session:
        assert set(session.scalars(statement, {"units": UNITS[:4], "region": "Region Test"})) == set(UNITS[:4])
        assert set(session.scalars(statement, {"units": UNITS[6:], "region": "Region Test"})) == set(UNITS[6:])
        assert session.scalars(statement, {"units": UNITS, "region": "Region Annan"}).all() == []


def test_the_condition_is_a_comparison_on_each_backend(sessions):
    """On SQLite the placeholders of `IN`, with no "= 1" after them (that kept SQLite from seeking by
    unit: a Klinikvy took 110 ms instead of 45); on PostgreSQL one array parameter."""
    with sessions() as session:
        sql = str(select(UnitRow.unit).where(one_of(UnitRow.unit, UNITS[:2])).compile(session.get_bind()))
    if session.get_bind().dialect.name == "postgresql":
        assert "= ANY(" in sql and " IN " not in sql
    else:
        assert " IN (" in sql and "= 1" not in sql
