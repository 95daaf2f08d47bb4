"""`vardkoll admin`: the registry and tokens from the command line, each change said out loud."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from .api_world import UPPSALA, VC01, running_api
from vardkoll.admin_cli import admin_app
from vardkoll.server.storage import make_engine, migrate


@pytest.fixture
def admin(database_url, monkeypatch):
    monkeypatch.setenv("VARDKOLL_DATABASE_URL", database_url)
    engine = make_engine(database_url)
    migrate(engine)
    engine.dispose()
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(admin_app, list(args), catch_exceptions=False)

    return run


def test_units_add_and_list(admin):
    added = admin("units", "add", VC01, "--name", "Vårdcentralen Ett", "--region", UPPSALA, "--opening-hours", '{"mon": [["08:00", "17:00"]]}')
    assert added.exit_code == 0, added.output
    assert f"registered unit {VC01}" in added.output and "with opening hours" in added.output
    listed = admin("units", "list")
    assert VC01 in listed.output and '"08:00"' in listed.output
    again = admin("units", "add", VC01, "--name", "x", "--region", UPPSALA)
    assert again.exit_code == 2 and "already registered" in again.output


def test_units_add_reports_every_problem_by_option_name(admin):
    result = admin("units", "add", "VC01", "--name", "x", "--region", UPPSALA, "--time-zone", "Mars/Base", "--opening-hours", '{"mon": [["17:00", "08:00"]]}')
    assert result.exit_code == 2
    assert "UNIT: must be an HSA-id" in result.output and "--time-zone: unknown time zone" in result.output
    assert "--opening-hours: mon: the opening span 17:00–08:00 ends before it starts" in result.output
    assert "not valid JSON" in admin("units", "add", VC01, "--name", "x", "--region", UPPSALA, "--opening-hours", "{mon").output


def test_targets_set_says_set_or_replaced(admin):
    admin("units", "add", VC01, "--name", "x", "--region", UPPSALA)
    first = admin("targets", "set", VC01, "telephone", "0.85", "--from", "2026-01-01")
    assert first.exit_code == 0 and "set target" in first.output and "telephone = 0.85 from 2026-01-01 until further notice" in first.output
    second = admin("targets", "set", VC01, "telephone", "none", "--from", "2026-01-01", "--to", "2026-06-30")
    assert "replaced target" in second.output and "= none" in second.output and "through 2026-06-30" in second.output
    assert "not registered" in admin("targets", "set", "SE2321000016-VC99", "telephone", "0.9", "--from", "2026-01-01").output
    assert "--to: valid_to" in admin("targets", "set", VC01, "telephone", "0.9", "--from", "2026-03-01", "--to", "2026-01-01").output
    assert "2026-06-30" in admin("targets", "list", VC01).output


def test_a_created_token_is_printed_once_and_works(admin, database_url):
    created = admin("tokens", "create", "--role", "clinic_manager", "--unit", VC01, "--name", "Chef VC01")
    assert created.exit_code == 0 and "created token 1 'Chef VC01'" in created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert len(secret) >= 40
    assert secret not in admin("tokens", "list").output
    with running_api(database_url) as api:
        assert api.get(f"/api/v1/units/{VC01}/targets", token=secret).status_code == 404  # known token, unit not registered
    revoked = admin("tokens", "revoke", "1")
    assert revoked.exit_code == 0 and "revoked token 1" in revoked.output
    assert "already revoked" in admin("tokens", "revoke", "1").output
    assert admin("tokens", "revoke", "7").exit_code == 2


def test_token_scope_must_fit_role(admin):
    result = admin("tokens", "create", "--role", "device", "--unit", VC01, "--name", "Pi")
    assert result.exit_code == 2 and "needs a device" in result.output
    assert "--role must be one of" in admin("tokens", "create", "--role", "root", "--name", "x").output


def test_devices_add_retire_and_list_say_what_changed(admin):
    assert admin("devices", "add", VC01, "pi-1").exit_code == 2  # the unit must be registered first
    admin("units", "add", VC01, "--name", "Vårdcentralen Ett", "--region", UPPSALA)
    assert "registered device pi-1" in admin("devices", "add", VC01, "pi-1").output
    assert "nothing changed" in admin("devices", "add", VC01, "pi-1").output
    assert "retired device pi-1" in admin("devices", "retire", VC01, "pi-1").output
    assert "again" in admin("devices", "add", VC01, "pi-1").output
    assert "pi-1" in admin("devices", "list", VC01).output
    assert admin("devices", "add", VC01, "pi/1").exit_code == 2
