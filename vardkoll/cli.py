"""The `vardkoll` command line."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer

from vardkoll.admin_cli import admin_app
from vardkoll.bridge_cli import bridge_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Care-guarantee compliance for Swedish primary care.")
app.add_typer(admin_app, name="admin", help="Manage units, targets and API tokens in the server's database.")
app.add_typer(bridge_app, name="bridge", help="The serial bridge for ticket dispensers and button panels.")


def _print_version(value: bool) -> None:
    if value:
        from vardkoll.server.monitoring.version import version

        typer.echo(f"vardkoll {version()}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """Care-guarantee compliance for Swedish primary care."""


def _fail(message: str) -> None:
    typer.echo(f"vardkoll: {message}", err=True)
    raise typer.Exit(2)


def _date_option(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{name} must be a date such as 2026-03-31, not {value!r}")
    return None


def _time_option(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"{name} must be a time such as 2026-03-31T12:00:00+02:00, not {value!r}")
        return None
    if moment.tzinfo is None:
        _fail(f"{name} needs an offset, e.g. 2026-03-31T12:00:00+02:00")
    return moment


@app.command()
def replay(
    events: Annotated[str, typer.Argument(help="JSON-lines event file (.jsonl or gzip), or - for stdin")],
    period_from: Annotated[Optional[str], typer.Option("--from", help="first local date (default: the events' first)")] = None,
    period_to: Annotated[Optional[str], typer.Option("--to", help="last local date (default: the events' last)")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="count only events at or before this time")] = None,
    units: Annotated[Optional[Path], typer.Option("--units", help="JSON file of unit settings (time zone, opening hours, targets, policy)")] = None,
) -> None:
    """Re-compute every metric for every unit in an event file and print the figures as JSON."""
    from vardkoll.server.replay import ReplayPeriodError, replay_path
    from vardkoll.server.replay import UnitSettingsError, load_unit_settings

    start, end = _date_option(period_from, "--from"), _date_option(period_to, "--to")
    if start and end and end < start:
        _fail(f"--to ({end}) is before --from ({start})")
    moment = _time_option(as_of, "--as-of")
    if events != "-" and not Path(events).is_file():
        _fail(f"no such file: {events}")
    try:
        config_of = load_unit_settings(units) if units else None
    except UnitSettingsError as exc:
        _fail(str(exc))
    with _progress(events) as on_bytes:
        try:
            document = replay_path(events, start, end, moment, config_of, on_bytes)
        except ReplayPeriodError as exc:
            _fail(str(exc))
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def _progress(events: str):
    """A progress bar on stderr for big files, only when a person is watching."""
    from contextlib import nullcontext

    if events == "-" or not sys.stderr.isatty() or os.path.getsize(events) < 8 << 20:
        return nullcontext(None)
    from vardkoll.progress import byte_progress

    with open(events, "rb") as head:
        compressed = head.read(2) == b"\x1f\x8b"
    # For gzip the bytes read are uncompressed ones, whose total is unknown until the end.
    return byte_progress(None if compressed else os.path.getsize(events), "replaying")


@app.command()
def schema(batch: Annotated[bool, typer.Option("--batch", help="the MQTT batch payload instead of one event")] = False) -> None:
    """Print the JSON Schema of a v1 event."""
    from vardkoll.protocol import batch_schema, event_schema

    sys.stdout.buffer.write(orjson.dumps(batch_schema() if batch else event_schema(), option=orjson.OPT_INDENT_2) + b"\n")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port of the web server")] = 8000,
    clinics: Annotated[int, typer.Option(help="how many clinics to simulate", min=1, max=20)] = 4,
    folder: Annotated[Optional[Path], typer.Option(help="where the demo keeps its database and the clinics' files (default: a new temporary folder)")] = None,
    broker: Annotated[str, typer.Option(help="auto (mosquitto when installed, else an in-process amqtt broker), mosquitto or amqtt")] = "auto",
) -> None:
    """Run everything on this machine: a broker, the server on SQLite, and simulated clinics whose systems feed real collectors."""
    from vardkoll.demo.runner import run_demo

    if broker not in ("auto", "mosquitto", "amqtt"):
        _fail(f"--broker must be auto, mosquitto or amqtt, not {broker!r}")
    run_demo(port=port, units=clinics, folder=folder, broker_kind=broker)


@app.command()
def server(
    host: Annotated[str, typer.Option(help="address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
) -> None:
    """Run the central service: MQTT ingest, the API and the scheduled jobs (settings: VARDKOLL_* variables)."""
    import uvicorn

    from vardkoll.server.app import create_app
    from vardkoll.server.settings import InsecureSettings, ServerSettings

    from vardkoll.server.storage import SchemaMismatch, check_schema, make_engine

    settings = ServerSettings()
    try:
        settings.check_secure(host)
    except InsecureSettings as exc:
        _fail(str(exc))
    from vardkoll.server.monitoring import configure_logging, log_config

    configure_logging(settings.log_format, settings.log_level)
    engine = make_engine(settings.database_url)
    try:
        check_schema(engine)
    except SchemaMismatch as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    # proxy_headers off: uvicorn would believe X-Forwarded-For from loopback; the app believes only
    # VARDKOLL_TRUSTED_PROXIES (server/guards/proxies.py).
    uvicorn.run(
        create_app(settings), host=host, port=port, log_config=log_config(settings.log_format, settings.log_level), access_log=False, proxy_headers=False
    )


@app.command()
def migrate(check: Annotated[bool, typer.Option("--check", help="only say whether the schema is current; exit 1 if not")] = False) -> None:
    """Bring the database's schema to this version's (VARDKOLL_DATABASE_URL); run it before starting servers after an upgrade."""
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage import make_engine, migrate as apply_migrations, schema_state

    settings = ServerSettings()
    engine = make_engine(settings.database_url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        if check:
            state = schema_state(engine)
            typer.echo(
                f"{where}: schema {state.current or 'none'}, this vardkoll needs {state.head}" + ("" if state.up_to_date else ": run `vardkoll migrate`"),
                err=True,
            )
            raise typer.Exit(0 if state.up_to_date else 1)
        before = apply_migrations(engine)
    finally:
        engine.dispose()
    if before.up_to_date:
        typer.echo(f"{where}: schema already at {before.head}; nothing changed", err=True)
    else:
        typer.echo(f"{where}: migrated schema from {before.current or 'empty'} to {before.head}", err=True)


collector_app = typer.Typer(no_args_is_help=True, help="The edge collector at a clinic (see docs/collector.md).")
app.add_typer(collector_app, name="collector")


def _collector(command: str, config: Path) -> None:
    from vardkoll.collector.__main__ import main as collector_main

    raise typer.Exit(collector_main([command, "--config", str(config)]))


@collector_app.command("run")
def collector_run(config: Annotated[Path, typer.Option(help="the collector's config file")]) -> None:
    """Run the collector: read the sources, keep events in the outbox, publish until acknowledged."""
    _collector("run", config)


@collector_app.command("outbox-stats")
def collector_outbox_stats(config: Annotated[Path, typer.Option(help="the collector's config file")]) -> None:
    """Show the outbox: depth, oldest undelivered event, drops, refusals."""
    _collector("outbox-stats", config)


@collector_app.command("dump-outbox")
def collector_dump_outbox(config: Annotated[Path, typer.Option(help="the collector's config file")]) -> None:
    """Write the outbox's events as JSON lines (what `vardkoll replay` reads)."""
    _collector("dump-outbox", config)


@collector_app.command("doctor")
def collector_doctor(
    config: Annotated[Path, typer.Option(help="the collector's config file")] = Path("/etc/vardkoll-collector/collector.toml"),
    server: Annotated[Optional[str], typer.Option(help="the vardkoll server's address, to compare clocks")] = None,
    timeout_s: Annotated[float, typer.Option(help="seconds to wait for each answer")] = 10.0,
) -> None:
    """Check that this device can run: broker and credentials, clock, sources, outbox, disk, secret files (report in Swedish)."""
    from vardkoll.collector.doctor import run_doctor

    report = run_doctor(config, server_url=server, timeout_s=timeout_s)
    typer.echo(report.text, nl=False)
    raise typer.Exit(report.exit_code)


@collector_app.command("enroll")
def collector_enroll(
    server: Annotated[str, typer.Option(help="the server's address, https://…")],
    code: Annotated[str, typer.Option(help="the one-time enrollment code from the installer view")],
    device: Annotated[Optional[str], typer.Option(help="this device's id (default: the host name)")] = None,
    config: Annotated[Path, typer.Option(help="where to write the collector's config")] = Path("/etc/vardkoll-collector/collector.toml"),
    state_dir: Annotated[Path, typer.Option(help="the collector's state folder (secret, token, outbox)")] = Path("/var/lib/vardkoll-collector"),
    ca_file: Annotated[Optional[Path], typer.Option(help="CA certificate for the server, when not publicly trusted")] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing config")] = False,
) -> None:
    """Enroll this device with a one-time code: registers it and writes its config and token (mode 0600)."""
    from vardkoll.collector.enrollment import EnrollmentError, enroll

    try:
        result = enroll(server, code, device=device, config_path=config, state_dir=state_dir, ca_file=ca_file, force=force)
    except EnrollmentError as exc:
        _fail(str(exc))
    typer.echo(f"Insamlaren {result.device} är registrerad för {result.unit}: konfiguration {result.config_path}, nyckel {result.token_file}", err=True)
    if result.mqtt_password_file is not None:
        typer.echo(f"MQTT-kontot är skapat; lösenordet ligger i {result.mqtt_password_file} (bara läsbart för tjänsten)", err=True)
    else:
        typer.echo("Servern skapar inga MQTT-konton: be driften om användarnamn och lösenord och för in dem under [mqtt] i konfigurationen", err=True)
    if result.secret_created:
        typer.echo(
            f"Pseudonymnyckeln {result.secret_file} är skapad: spara en säker kopia (vardkoll collector export-secret) så att historiken kan flyttas till en ersättare",
            err=True,
        )


_DEFAULT_COLLECTOR_CONFIG = Path("/etc/vardkoll-collector/collector.toml")


@collector_app.command("lookup")
def collector_lookup(
    pseudonym: Annotated[str, typer.Argument(help="a case's or call's pseudonym, as an alert or Klinikvy shows it")],
    config: Annotated[Path, typer.Option(help="the collector's config file")] = _DEFAULT_COLLECTOR_CONFIG,
) -> None:
    """The source system's own reference for a case or call (booking id, queue call id, FHIR Appointment id), in Swedish.

    Answers from this device's local map only (kept 60 days by default); exit 1 when the pseudonym is unknown."""
    from vardkoll.collector.config import ConfigError, load_config
    from vardkoll.collector.lookup import LookupMap, answer

    try:
        settings = load_config(config)
    except ConfigError as exc:
        _fail(str(exc))
    if not settings.lookup.enabled or not settings.lookup_file.exists():
        _fail(f"ingen uppslagstabell på den här insamlaren ({settings.lookup_file}): [lookup] är avstängd eller inget har samlats in än")
    lookup = LookupMap(settings.lookup_file, settings.lookup.retention_days)
    try:
        references = lookup.lookup(pseudonym)
    finally:
        lookup.close()
    typer.echo(answer(pseudonym.strip(), references, settings.lookup.retention_days), nl=False)
    raise typer.Exit(0 if references else 1)


@collector_app.command("export-secret")
def collector_export_secret(
    out: Annotated[Path, typer.Option(help="the encrypted file to write (mode 0600)")],
    config: Annotated[Path, typer.Option(help="the collector's config file (where the secret is)")] = _DEFAULT_COLLECTOR_CONFIG,
    secret_file: Annotated[Optional[Path], typer.Option(help="the secret file itself, instead of --config")] = None,
    passphrase_file: Annotated[Optional[Path], typer.Option(help="read the passphrase from this file's first line instead of asking")] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing --out file")] = False,
) -> None:
    """Export the pseudonym secret encrypted with a passphrase, for a replacement device."""
    from vardkoll.secret_cli import run_export

    run_export(out, config, secret_file, passphrase_file, force)


@collector_app.command("import-secret")
def collector_import_secret(
    file: Annotated[Path, typer.Argument(help="a file written by export-secret")],
    config: Annotated[Path, typer.Option(help="the collector's config file (where the secret goes)")] = _DEFAULT_COLLECTOR_CONFIG,
    secret_file: Annotated[Optional[Path], typer.Option(help="the secret file itself, instead of --config")] = None,
    passphrase_file: Annotated[Optional[Path], typer.Option(help="read the passphrase from this file's first line instead of asking")] = None,
    force: Annotated[bool, typer.Option(help="replace the device's existing secret")] = False,
) -> None:
    """Import an exported pseudonym secret, so this device makes the same pseudonyms as the old one."""
    from vardkoll.secret_cli import run_import

    run_import(file, config, secret_file, passphrase_file, force)


@collector_app.command("install-update")
def collector_install_update(
    state_dir: Annotated[Path, typer.Option(help="the collector's state folder (the staged update is in update/)")] = Path("/var/lib/vardkoll-collector"),
    prefix: Annotated[Path, typer.Option(help="where the versions are installed (versions/, current)")] = Path("/opt/vardkoll-collector"),
    keys: Annotated[Path, typer.Option(help="the trusted update keys: a folder of *.pub or one file")] = Path("/etc/vardkoll-collector/update-keys"),
    confirm_timeout_s: Annotated[float, typer.Option(help="how long the new version has to reach the broker")] = 120.0,
    python: Annotated[str, typer.Option(help="the Python the versions' venvs are made from")] = "python3",
) -> None:
    """As root (vardkoll-collector-update.service): install the staged, signed update; roll back if it does not connect."""
    import logging

    from vardkoll.collector.updates.install import Installer

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s %(message)s")
    result = Installer(state_dir, prefix, keys, python=python, confirm_timeout_s=confirm_timeout_s).run()
    if result is None:
        typer.echo("no staged update", err=True)
        return
    typer.echo(f"version {result.version}: {result.state}" + (f" ({result.reason})" if result.reason else ""), err=True)
    if result.state != "installed":
        raise typer.Exit(1)


def main() -> None:
    app()
