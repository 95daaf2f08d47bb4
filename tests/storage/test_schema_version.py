"""Migrations are an explicit step: `vardkoll migrate` applies them; the server and the admin CLI refuse a
database whose schema is not this code's, and say what to run."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from vardkoll.admin_cli import admin_app
from vardkoll.cli import app
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage import SchemaMismatch, make_engine, schema_state

runner = CliRunner()


def test_services_refuse_an_empty_database_and_name_the_command(database_url):
    with pytest.raises(SchemaMismatch, match=r"no vardkoll schema yet: run `vardkoll migrate`"):
        build_services(ServerSettings(database_url=database_url))


def test_migrate_applies_once_then_says_nothing_changed(database_url, monkeypatch):
    monkeypatch.setenv("VARDKOLL_DATABASE_URL", database_url)
    assert runner.invoke(app, ["migrate", "--check"]).exit_code == 1
    first = runner.invoke(app, ["migrate"])
    assert first.exit_code == 0 and "migrated schema from empty to" in first.output
    again = runner.invoke(app, ["migrate"])
    assert again.exit_code == 0 and "nothing changed" in again.output
    assert runner.invoke(app, ["migrate", "--check"]).exit_code == 0
    build_services(ServerSettings(database_url=database_url)).engine.dispose()  # no longer refused


def test_a_schema_behind_this_code_is_refused_until_migrated(database_url, monkeypatch):
    monkeypatch.setenv("VARDKOLL_DATABASE_URL", database_url)
    runner.invoke(app, ["migrate"])
    engine = make_engine(database_url)
    head = schema_state(engine).head
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    listed = runner.invoke(admin_app, ["units", "list"])
    assert listed.exit_code == 2 and f"is at schema 0001, this vardkoll needs {head}: run `vardkoll migrate`" in listed.output
    engine.dispose()


def test_a_schema_from_a_newer_vardkoll_is_refused(database_url, monkeypatch):
    monkeypatch.setenv("VARDKOLL_DATABASE_URL", database_url)
    monkeypatch.setenv("VARDKOLL_DEV", "1")
    runner.invoke(app, ["migrate"])
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    served = runner.invoke(app, ["server", "--port", "1"])
    assert served.exit_code == 2 and "migrated by a newer vardkoll" in served.output
    engine.dispose()
