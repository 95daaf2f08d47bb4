"""A lease in the database: at most one holder at a time, on SQLite and on PostgreSQL alike.

Acquiring and renewing are one conditional UPDATE ("mine already, or expired") and, the first time a
name is used, an INSERT that does nothing on conflict. Both are single statements, so the database
decides who wins: on PostgreSQL a concurrent UPDATE re-checks its WHERE clause against the committed
row (and a concurrent INSERT waits for the other's commit, then does nothing), and SQLite runs one
writer at a time. The UPDATE's row count, and the row the INSERT returns, say whether this holder now
has the lease.

Expiry compares times from the processes' own clocks: keep server clocks in sync (NTP). A holder
that loses its lease late by a clock's skew may overlap with the next one for that long, so every
job is written to be harmless when run twice.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session, sessionmaker

from ..storage.registry_tables import Lease
from ..storage.upsert import dialect_insert

HOLDER_MAX_CHARS = 128


def make_holder_id() -> str:
    """`hostname:pid:random`: unique per process start, and says where the holder runs."""
    suffix = f":{os.getpid()}:{secrets.token_hex(4)}"
    return socket.gethostname()[: HOLDER_MAX_CHARS - len(suffix)] + suffix


def try_acquire(sessions: sessionmaker[Session], name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    """Take or renew lease `name` for `holder` until `now + ttl_s`; False while someone else holds it."""
    expires_at = now + timedelta(seconds=ttl_s)
    table = Lease.__table__
    with sessions.begin() as session:
        renewed = session.execute(
            update(table).where(table.c.name == name, or_(table.c.holder == holder, table.c.expires_at < now)).values(holder=holder, expires_at=expires_at)
        )
        if renewed.rowcount == 1:
            return True
        # RETURNING rather than the row count, which PostgreSQL drivers report as -1 for an INSERT
        # that SQLAlchemy already gives an implicit RETURNING.
        created = session.execute(
            dialect_insert(session, table)
            .values(name=name, holder=holder, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(table.c.name)
        )
        return created.first() is not None


def release(sessions: sessionmaker[Session], name: str, holder: str) -> bool:
    """Give the lease up (only if `holder` has it), so another process can take it at once."""
    table = Lease.__table__
    with sessions.begin() as session:
        return session.execute(delete(table).where(table.c.name == name, table.c.holder == holder)).rowcount == 1


def current_holder(sessions: sessionmaker[Session], name: str, now: datetime) -> str | None:
    """Who holds lease `name` at `now` (None when nobody does or it has expired)."""
    with sessions() as session:
        row = session.get(Lease, name)
        return row.holder if row is not None and row.expires_at >= now else None
