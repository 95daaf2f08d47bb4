"""What a reader computed is written without waiting behind another writer on SQLite
(server/figures/computed_writes.py): the write is given up at once, the reader goes on, and the
connection goes back to the pool with the engine's busy timeout."""

from __future__ import annotations

import sqlite3
import time

from sqlalchemy import text

from vardkoll.server.figures.computed_writes import write_computed
from vardkoll.server.storage.database import make_engine, make_sessions


def _engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'figures.sqlite'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE kept (unit TEXT PRIMARY KEY, value INTEGER)"))
    return engine


def _keep(unit: str, value: int):
    return lambda session: session.execute(text("INSERT INTO kept VALUES (:unit, :value)"), {"unit": unit, "value": value})


def _kept(engine) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text("SELECT unit, value FROM kept ORDER BY unit"))]


def _busy_timeouts(engine) -> set[int]:
    """The busy timeout of every connection the engine's pool holds (checked out together)."""
    connections = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:
        return {connection.exec_driver_sql("PRAGMA busy_timeout").scalar() for connection in connections}
    finally:
        for connection in connections:
            connection.close()


def test_every_write_of_a_reader_lands_in_one_transaction_when_nobody_else_writes(tmp_path):
    engine = _engine(tmp_path)
    assert write_computed(make_sessions(engine), [_keep("VC01", 1), _keep("VC02", 2)], "test rows") is True
    assert _kept(engine) == [("VC01", 1), ("VC02", 2)]
    assert _busy_timeouts(engine) == {30_000}


def test_a_reader_gives_its_write_up_at_once_while_another_connection_writes(tmp_path):
    engine = _engine(tmp_path)
    writer = sqlite3.connect(tmp_path / "figures.sqlite", isolation_level=None)  # as ingest in another thread or process
    writer.execute("BEGIN IMMEDIATE")  # holds SQLite's one write lock, as a commit in progress does
    try:
        started = time.monotonic()
        assert write_computed(make_sessions(engine), [_keep("VC01", 1)], "test rows") is False
        waited = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert waited < 5, f"waited {waited:.1f} s for the lock: the engine's busy timeout is 30 s"
    assert _kept(engine) == []  # nothing half-written
    # The connection went back to the pool with the engine's busy timeout: ingest on it waits as before.
    assert _busy_timeouts(engine) == {30_000}
    # And the next reader's write, with the lock free, lands.
    assert write_computed(make_sessions(engine), [_keep("VC01", 1), _keep("VC02", 2)], "test rows") is True
    assert _kept(engine) == [("VC01", 1), ("VC02", 2)]


def test_a_failing_write_leaves_none_of_the_others_and_says_so_in_its_answer(tmp_path):
    engine = _engine(tmp_path)
    assert write_computed(make_sessions(engine), [_keep("VC01", 1), _keep("VC01", 2)], "test rows") is False  # the key twice
    assert _kept(engine) == []
    assert _busy_timeouts(engine) == {30_000}


def test_on_postgresql_too_the_writes_are_one_transaction(postgres_database_url):
    """Not a commit per statement: a cold page keeps thousands of day parts in one UPDATE per metric,
    whose rows would each wait for a flush of the write-ahead log if every statement committed alone."""
    engine = make_engine(postgres_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE kept (unit TEXT PRIMARY KEY, value INTEGER)"))
        assert write_computed(make_sessions(engine), [_keep("VC01", 1), _keep("VC02", 2)], "test rows") is True
        assert write_computed(make_sessions(engine), [_keep("VC03", 3), _keep("VC01", 4)], "test rows") is False  # VC01 twice
        assert _kept(engine) == [("VC01", 1), ("VC02", 2)]
    finally:
        engine.dispose()
