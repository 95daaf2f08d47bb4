"""Migrations as an explicit step: apply them (`vardkoll migrate`), or check that the schema is the one this
code was written for and refuse to start otherwise, with a message that says what to run."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one this code needs; the message says what to do."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: an empty database, no migration applied
    head: str  # the newest migration this code ships

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config():  # alembic's Config has no stubs
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _scripts():  # alembic's ScriptDirectory has no stubs
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the migrations folder has no head revision"
    return str(head)


def schema_state(engine: Engine) -> SchemaState:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(current, head_revision())


def migrate(engine: Engine) -> SchemaState:
    """Bring the schema to the newest version (alembic, versioned scripts in migrations/); the state before."""
    from alembic import command

    before = schema_state(engine)
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before


def check_schema(engine: Engine) -> None:
    """Refuse to run on a database whose schema this code was not written for."""
    state = schema_state(engine)
    if state.up_to_date:
        return
    where = engine.url.render_as_string(hide_password=True)
    if state.current is None:
        raise SchemaMismatch(f"the database {where} has no vardkoll schema yet: run `vardkoll migrate` first")
    try:
        _scripts().get_revision(state.current)
    except Exception:  # alembic raises its own errors for a revision it does not know
        raise SchemaMismatch(
            f"the database {where} is at schema {state.current}, which this vardkoll (schema {state.head}) does not know: "
            "it was migrated by a newer vardkoll; run that version"
        ) from None
    raise SchemaMismatch(f"the database {where} is at schema {state.current}, this vardkoll needs {state.head}: run `vardkoll migrate`")
