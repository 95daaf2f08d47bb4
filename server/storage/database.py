"""Database engines for SQLite (the embedded default, in WAL mode) and PostgreSQL."""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for the lock (readers' cache writes do not wait)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL survives power loss
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # hide_parameters: an error's text (logged, or raised to a caller) never quotes the rows' values
    # (a token's hash, an event's body).
    engine = create_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
    event.listen(engine, "checkout", _ping_when_the_server_spoke(engine))
    return engine


def _ping_when_the_server_spoke(engine: Engine) -> Any:
    """A pooled connection is pinged at checkout only when the server sent something while it sat idle.

    A connection the server has cut (a restart, a crash, an administrator) has its socket readable: the
    server's last message, or the end of the stream. An idle connection the server still serves has
    nothing to read. So the socket is asked first, without a round trip, and only a readable one is
    pinged; a failed ping invalidates every pooled connection older than now, as `pool_pre_ping` does.
    Every checkout used to ping (`pool_pre_ping`): a round trip before each request's, each live
    update's and each ingest commit's first statement, 3-10 ms each under a country's burst on the
    benchmark machine (docs/benchmarks.md). A connection that is not cut but silently gone (a host off
    the network) hangs its ping and its statement alike: neither way saves it.
    """

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            if not _quiet(dbapi_connection):
                engine.dialect.do_ping(dbapi_connection)
        except (OSError, engine.dialect.loaded_dbapi.Error) as error:
            raise exc.InvalidatePoolError("the connection was cut while it was idle in the pool") from error

    return checkout


def _quiet(dbapi_connection: Any) -> bool:
    """True when the connection is open and the server has sent nothing since its last answer (nor hung
    up). `poll`, not `select`: a server process with hundreds of live streams has descriptors past
    `select`'s 1 024."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return False
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    return not poller.poll(0)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def read_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions like `sessions` for work that only reads, or writes in one statement. On PostgreSQL they
    run no transaction: each statement still reads its own snapshot, as every statement does inside a
    READ COMMITTED transaction, and a write commits with its statement, but a session costs no BEGIN and
    no ROLLBACK round trip (every signed-in request opens one to find its token, a Regionvy or a live
    update one or two more). SQLite's are `sessions` themselves: its driver begins no transaction for
    reads."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        return sessions
    return sessionmaker(**{**sessions.kw, "bind": engine.execution_options(isolation_level="AUTOCOMMIT")})
