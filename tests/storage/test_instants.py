"""Instants are stored with their time zone and come back as aware UTC datetimes, on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import StatementError

from vardkoll.server.storage import make_engine, make_sessions, migrate
from vardkoll.server.storage.registry_tables import DeviceRow, UnitRow

STOCKHOLM_WINTER = timezone(timedelta(hours=1))


def test_an_instant_written_with_an_offset_reads_back_as_the_same_instant_in_utc(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessions(engine)
    registered = datetime(2026, 3, 1, 8, 30, tzinfo=STOCKHOLM_WINTER)
    with sessions.begin() as session:
        session.add(UnitRow(unit="SE2321000016-VC01", name="Vårdcentralen Ett", region="Region Test"))
        session.add(DeviceRow(unit="SE2321000016-VC01", device="pi-1", registered_at=registered))
    with sessions() as session:
        row = session.get(DeviceRow, ("SE2321000016-VC01", "pi-1"))
        assert row.registered_at == registered
        assert row.registered_at.tzinfo == timezone.utc and row.registered_at.hour == 7
    if engine.dialect.name == "postgresql":
        columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("devices")}
        assert columns["registered_at"].timezone is True
    engine.dispose()


def test_a_naive_instant_is_refused_rather_than_guessed(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    with pytest.raises(StatementError, match="needs a time zone"):
        with make_sessions(engine).begin() as session:
            session.add(UnitRow(unit="SE2321000016-VC01", name="Vårdcentralen Ett", region="Region Test"))
            session.add(DeviceRow(unit="SE2321000016-VC01", device="pi-1", registered_at=datetime(2026, 3, 1, 8, 30)))
    engine.dispose()
