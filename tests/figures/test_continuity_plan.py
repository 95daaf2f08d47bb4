"""Continuity's 18-month sums are read with hash aggregation off on PostgreSQL (the index-ordered plan,
server/figures/continuity_sums.py), also in the figure service's sessions without a transaction, and the
pooled connection goes back with the server's setting."""

from __future__ import annotations

from sqlalchemy import text

from vardkoll.server.figures.continuity_sums import _read_in_index_order
from vardkoll.server.storage.database import make_engine, make_sessions, read_sessions


def test_hash_aggregation_is_off_for_the_statement_alone_in_read_sessions(postgres_database_url):
    engine = make_engine(postgres_database_url)
    try:
        setting = text("SELECT current_setting('enable_hashagg')")
        sessions = make_sessions(engine)
        for opened in (read_sessions(sessions), sessions):
            with opened() as session:
                assert [tuple(row) for row in _read_in_index_order(session, setting)] == [("off",)]
                assert session.execute(setting).scalar_one() == "on"
        with read_sessions(sessions)() as session:
            assert session.execute(setting).scalar_one() == "on"
    finally:
        engine.dispose()
