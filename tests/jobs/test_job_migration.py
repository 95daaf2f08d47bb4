"""Migration 0002 creates exactly the jobs' tables as the models declare them, and goes down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from vardkoll.server.storage import job_tables, make_engine, migrate, registry_tables, tables  # noqa: F401
from vardkoll.server.storage.schema_version import MIGRATIONS

JOB_TABLES = {"alerts", "audits", "sweep_marks"}


def _alembic(engine, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_the_migrated_schema_matches_the_models_and_0002_goes_down_and_up(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        assert JOB_TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        job_drift = [d for d in drift if any(name in repr(d) for name in JOB_TABLES)]
        assert job_drift == [], job_drift

        _alembic(engine, "downgrade", "0001")
        assert not JOB_TABLES & set(inspect(engine).get_table_names())
        assert "leases" in inspect(engine).get_table_names()
        migrate(engine)
        assert JOB_TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
