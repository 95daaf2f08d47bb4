"""Write what a reader computed (stored figures, kept day parts) without waiting behind ingest.

Both are caches: what is not written is computed again by the next reader that needs it. On SQLite
one connection at a time may write. A reader that waited for the lock (the engine's busy timeout)
held its answer back while ingest committed batch after batch, and SQLite's busy handler sleeps in
growing steps, so a waiting reader can lose the lock to every commit: live updates took up to a
second at 1 000 events/s (bench/live_latency.py, docs/benchmarks.md). So a reader's writes go in one
transaction that gives up at once when another connection holds the lock. On PostgreSQL they wait
as before: rows are locked one by one there, and ingest holds them for a few milliseconds. They stay
one transaction there too, although each row stands alone: without one, every statement of an
UPDATE of many rows commits alone and waits for its own flush of the write-ahead log (a cold page
keeps thousands of day parts); tried and taken back on 2026-12-07, for the BEGIN and COMMIT round
trips it saved a page that computed something.
"""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..storage.database import SQLITE_BUSY_TIMEOUT_MS

log = logging.getLogger("vardkoll.figures")

Write = Callable[[Session], None]


def write_computed(sessions: sessionmaker[Session], writes: list[Write], what: str) -> bool:
    """Run `writes` in one transaction; False when it was not written (the lock was taken, or the
    database failed), which only costs computing the same again later. `what`: for the log."""
    if not writes:
        return True
    engine = sessions.kw["bind"]
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            if sqlite:
                _busy_timeout(connection, 0)
            try:
                with Session(bind=connection) as session, session.begin():
                    for write in writes:
                        write(session)
            finally:
                if sqlite:
                    _busy_timeout(connection, SQLITE_BUSY_TIMEOUT_MS)  # the engine's own, put back
        return True
    except OperationalError as error:
        if "database is locked" in str(error.orig):
            log.debug("left %s unwritten: another connection was writing", what)
            return False
        log.warning("could not write %s", what, exc_info=True)
        return False
    except SQLAlchemyError:
        log.warning("could not write %s", what, exc_info=True)
        return False


def _busy_timeout(connection: Connection, milliseconds: int) -> None:
    try:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={milliseconds}")
        connection.commit()  # ends the statement's implicit transaction, so the session's is its own
    except SQLAlchemyError:
        connection.invalidate()  # never back into the pool with a busy timeout of 0
        raise
