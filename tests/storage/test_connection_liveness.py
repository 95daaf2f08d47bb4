"""Round trips that PostgreSQL connections save (server/storage/database.py): pooled connections are
pinged only when the server spoke while they were idle (no round trip before a healthy connection's
first statement, and every request after a restart that cut them all still succeeds), and sessions
that only read run no transaction."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from vardkoll.server.storage.database import make_engine, make_sessions, read_sessions


@pytest.fixture
def engine(postgres_database_url: str) -> Iterator[Engine]:
    made = make_engine(postgres_database_url)
    yield made
    made.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        seen.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_healthy_pooled_connection_is_not_pinged(engine, pings):
    first = backend_pid(engine)
    assert [backend_pid(engine) for _ in range(5)] == [first] * 5  # the same pooled connection each time
    assert pings == []


def test_a_connection_the_server_cut_is_replaced_without_a_failed_request(engine, pings):
    cut, killer = engine.connect(), engine.connect()
    pid = cut.execute(text("SELECT pg_backend_pid()")).scalar_one()
    cut.close()  # back in the pool, idle, and first in line
    killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.close()
    assert backend_pid(engine) != pid
    assert len(pings) == 1  # the cut connection's socket spoke (the server's farewell): pinged, failed, replaced


def test_every_request_after_a_database_restart_succeeds(engine, postgres_cluster):
    held = [engine.connect() for _ in range(4)]  # four pooled connections, all cut by the restart
    before = {connection.execute(text("SELECT pg_backend_pid()")).scalar_one() for connection in held}
    for connection in held:
        connection.close()
    postgres_cluster.restart("immediate")
    after = [backend_pid(engine) for _ in range(4)]
    assert not before & set(after)


def in_a_transaction_after_a_statement(session: Session) -> bool:
    """Whether the session's second statement runs in a transaction the first one began."""
    session.execute(text("SELECT pg_sleep(0.01)"))
    return session.execute(text("SELECT xact_start < query_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")).scalar_one()


def test_read_sessions_run_no_transaction_on_postgresql(engine):
    sessions = make_sessions(engine)
    with read_sessions(sessions)() as session:
        assert not in_a_transaction_after_a_statement(session)  # no BEGIN, no ROLLBACK: two round trips fewer
    with sessions() as session:
        assert in_a_transaction_after_a_statement(session)  # the sessions that write are as they were
    with read_sessions(sessions)() as session:
        assert not in_a_transaction_after_a_statement(session)  # the pooled connection was given back as it was


def test_read_sessions_on_sqlite_are_the_sessions_themselves(tmp_path):
    sessions = make_sessions(make_engine(f"sqlite:///{tmp_path / 'read.sqlite'}"))
    assert read_sessions(sessions) is sessions


def test_a_connection_past_descriptor_1024_is_checked_too(engine, pings):
    """A server process with hundreds of live streams has descriptors past `select`'s limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this machine allows {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with engine.connect() as connection:
            assert connection.connection.driver_connection.fileno() > 1024
        assert backend_pid(engine) > 0  # checked out again: asked whether the server spoke
        assert pings == []
    finally:
        for descriptor in filler:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
