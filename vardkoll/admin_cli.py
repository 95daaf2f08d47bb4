"""`vardkoll admin`: the unit registry, targets and API tokens, straight in the server's database.

Reads the same settings as the server (VARDKOLL_DATABASE_URL, ...). Every command that changes something
says what it changed; `tokens create` prints the new token's secret alone on stdout, once.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

admin_app = typer.Typer(no_args_is_help=True, help="Manage the unit registry, targets and API tokens in the server's database.")
units_app = typer.Typer(no_args_is_help=True, help="Registered units (HSA-id, name, region, time zone, opening hours).")
targets_app = typer.Typer(no_args_is_help=True, help="Targets per unit and metric, with validity dates.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens and their roles.")
admin_app.add_typer(units_app, name="units")
admin_app.add_typer(targets_app, name="targets")
admin_app.add_typer(tokens_app, name="tokens")
devices_app = typer.Typer(no_args_is_help=True, help="Collector devices allowed to publish for a unit.")
admin_app.add_typer(devices_app, name="devices")

ROLES = "admin, region_analyst, clinic_manager, installer, device"


def _fail(message: str) -> None:
    typer.echo(f"vardkoll admin: {message}", err=True)
    raise typer.Exit(2)


def _said(message: str) -> None:
    typer.echo(message, err=True)


def _record(session: "Session", command: str, unit: str | None = None, detail: str = "") -> None:
    """The access log's record of a change made here (who: the account running the command)."""
    import getpass

    from vardkoll.server.access_log import record_access

    record_access(session, f"vardkoll admin ({getpass.getuser()})", "admin", f"change:cli {command}", unit=unit, detail=detail, client="cli")


@contextmanager
def _transaction() -> Iterator["Session"]:
    """A session on the server's database (whose schema must be current), committed on success."""
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage import SchemaMismatch

    try:
        services = build_services(ServerSettings())
    except SchemaMismatch as exc:
        _fail(str(exc))
    try:
        with services.sessions.begin() as session:
            yield session
    finally:
        services.engine.dispose()


def _validated(model: Any, data: dict[str, Any], options: dict[str, str]) -> Any:
    """Validate with the API's own schema; report problems under the option names the user typed."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            problems.append(f"{options.get(field, field or 'input')}: {error['msg'].removeprefix('Value error, ')}")
        _fail("; ".join(problems))


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    """A table for a person at a terminal; tab-separated lines with a header for a script."""
    import sys

    from rich.console import Console
    from rich.table import Table

    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if not sys.stdout.isatty():
        for line in [columns, *cells]:
            typer.echo("\t".join(line))
        return
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*row)
    Console().print(table)


@units_app.command("add")
def units_add(
    unit: Annotated[str, typer.Argument(help="HSA-id, e.g. SE2321000016-15SF")],
    name: Annotated[str, typer.Option(help="the unit's name")],
    region: Annotated[str, typer.Option(help="the region it belongs to")],
    time_zone: Annotated[str, typer.Option(help="IANA time zone")] = "Europe/Stockholm",
    opening_hours: Annotated[Optional[str], typer.Option(help='JSON, e.g. {"mon": [["08:00", "17:00"]]}')] = None,
    unreached_callback_counts: Annotated[bool, typer.Option(help="does a callback that did not reach the patient count as contact?")] = True,
    ownership: Annotated[Optional[str], typer.Option(help="offentlig or privat (region reports split by it)")] = None,
    municipality_code: Annotated[Optional[str], typer.Option(help="SCB's four-digit municipality code, e.g. 0380")] = None,
    listed_patients: Annotated[Optional[int], typer.Option(help="listed patients, as the listing register counts them")] = None,
) -> None:
    """Register a unit."""
    from vardkoll.server.registry import RegistryConflict, UnitCreate, add_unit

    hours = None
    if opening_hours is not None:
        try:
            hours = json.loads(opening_hours)
        except json.JSONDecodeError as exc:
            _fail(f'--opening-hours is not valid JSON ({exc.msg}); e.g. \'{{"mon": [["08:00", "17:00"]]}}\'')
    spec = _validated(
        UnitCreate,
        {
            "unit": unit,
            "name": name,
            "region": region,
            "time_zone": time_zone,
            "opening_hours": hours,
            "unreached_callback_counts": unreached_callback_counts,
            "ownership": ownership,
            "municipality_code": municipality_code,
            "listed_patients": listed_patients,
        },
        {
            "unit": "UNIT",
            "name": "--name",
            "region": "--region",
            "time_zone": "--time-zone",
            "opening_hours": "--opening-hours",
            "ownership": "--ownership",
            "municipality_code": "--municipality-code",
            "listed_patients": "--listed-patients",
        },
    )
    with _transaction() as session:
        try:
            add_unit(session, spec)
        except RegistryConflict:
            _fail(f"unit {unit} is already registered")
        _record(session, "units add", unit)
    _said(
        f"registered unit {unit} ({name}) in region {region}, time zone {spec.time_zone}"
        + (", with opening hours" if hours else ", no opening hours (every offered call counts)")
    )


@units_app.command("list")
def units_list(region: Annotated[Optional[str], typer.Option(help="only this region's units")] = None) -> None:
    """List the registered units."""
    from vardkoll.server.registry import registered_units

    with _transaction() as session:
        rows = registered_units(session, region)
    if not rows:
        _said("no units registered" + (f" in region {region}" if region else ""))
        return
    _table(
        ["unit", "name", "region", "time zone", "opening hours", "unreached callbacks count"],
        [[r.unit, r.name, r.region, r.time_zone, r.opening_hours or "-", "yes" if r.unreached_callback_counts else "no"] for r in rows],
    )


@targets_app.command("set")
def targets_set(
    unit: Annotated[str, typer.Argument(help="HSA-id of a registered unit")],
    metric: Annotated[str, typer.Argument(help="assessment, continuity, fixed_doctor or telephone")],
    value: Annotated[str, typer.Argument(help="a share such as 0.9, or 'none' for no target")],
    valid_from: Annotated[str, typer.Option("--from", help="first date it applies")],
    valid_to: Annotated[Optional[str], typer.Option("--to", help="last date it applies (default: open-ended)")] = None,
) -> None:
    """Set a unit's target for a metric from a date; one with the same metric and start is replaced."""
    from vardkoll.server.registry import TargetCreate, UnknownUnit, set_target

    target: Any = None if value.lower() == "none" else value
    spec = _validated(
        TargetCreate,
        {"metric": metric, "target": target, "valid_from": valid_from, "valid_to": valid_to},
        {"metric": "METRIC", "target": "VALUE", "valid_from": "--from", "valid_to": "--to", "": "--to"},
    )
    with _transaction() as session:
        try:
            row, replaced = set_target(session, unit, spec, replace=True)
        except UnknownUnit as exc:
            _fail(f"{exc}; register it first with `vardkoll admin units add`")
        _record(session, "targets set", unit, f"{metric} from {spec.valid_from}")
    until = f"through {row.valid_to}" if row.valid_to else "until further notice"
    _said(
        f"{'replaced' if replaced else 'set'} target {row.id}: {unit} {metric} = {row.target if row.target is not None else 'none'}"
        f" from {row.valid_from} {until}"
    )


@targets_app.command("list")
def targets_list(unit: Annotated[str, typer.Argument(help="HSA-id")]) -> None:
    """List a unit's targets."""
    from vardkoll.server.registry import unit_targets

    with _transaction() as session:
        rows = unit_targets(session, unit)
    if not rows:
        _said(f"unit {unit} has no targets of its own: the defaults apply")
        return
    _table(["id", "metric", "target", "from", "to"], [[r.id, r.metric, r.target, r.valid_from, r.valid_to or "open"] for r in rows])


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help=ROLES)],
    name: Annotated[str, typer.Option(help="who or what holds the token")],
    region: Annotated[Optional[str], typer.Option(help="region_analyst, installer: the region")] = None,
    unit: Annotated[Optional[str], typer.Option(help="clinic_manager, device: the unit's HSA-id")] = None,
    device: Annotated[Optional[str], typer.Option(help="device: the device id")] = None,
    valid_days: Annotated[Optional[int], typer.Option(help="lifetime in days (default: 365 for people, 730 for devices)", min=1, max=3650)] = None,
) -> None:
    """Create an API token. The secret is printed once on stdout and stored only as its SHA-256."""
    from vardkoll.server.api.tokens import lifetime
    from vardkoll.server.auth import Role, TokenScopeError, check_scope, issue_token
    from vardkoll.server.settings import ServerSettings

    try:
        chosen = Role(role)
        check_scope(chosen, region, unit, device)
    except ValueError as exc:  # TokenScopeError is one
        _fail(str(exc) if isinstance(exc, TokenScopeError) else f"--role must be one of: {ROLES}")
    if not name.strip():
        _fail("--name must not be empty")
    with _transaction() as session:
        row, secret = issue_token(session, name, chosen, region, unit, device, valid_for=lifetime(ServerSettings(), chosen, valid_days))
        _record(session, "tokens create", unit, f"token {row.id} ({role})")
    scope = ", ".join(f"{k} {v}" for k, v in (("region", region), ("unit", unit), ("device", device)) if v) or "no scope limit"
    _said(f"created token {row.id} '{name}': {role}, {scope}, valid until {row.expires_at:%Y-%m-%d}. The secret follows; it is not shown again.")
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list() -> None:
    """List the API tokens (never their secrets)."""
    from vardkoll.server.auth import list_tokens

    with _transaction() as session:
        rows = list_tokens(session)
    if not rows:
        _said("no tokens yet (VARDKOLL_ADMIN_TOKEN still works as an admin token)")
        return
    _table(
        ["id", "name", "role", "region", "unit", "device", "created", "expires", "last used", "revoked"],
        [
            [
                r.id,
                r.name,
                r.role,
                r.region,
                r.unit,
                r.device,
                f"{r.created_at:%Y-%m-%d %H:%M}",
                f"{r.expires_at:%Y-%m-%d %H:%M}" if r.expires_at else "",
                f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never",
                f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
            ]
            for r in rows
        ],
    )


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="the token's id (see `tokens list`)")]) -> None:
    """Revoke a token at once; it stays listed with the time it was revoked."""
    from vardkoll.server.auth import revoke_token

    with _transaction() as session:
        revoked = revoke_token(session, token_id)
        if revoked is None:
            _fail(f"there is no token with id {token_id}")
        row, newly = revoked
        name, revoked_at = row.name, row.revoked_at
        if newly:
            _record(session, "tokens revoke", row.unit, f"token {token_id}")
    when = f"{revoked_at:%Y-%m-%d %H:%M:%S} UTC"
    _said(f"revoked token {token_id} '{name}' at {when}" if newly else f"token {token_id} '{name}' was already revoked at {when}; nothing changed")


@tokens_app.command("rotate")
def tokens_rotate(
    token_id: Annotated[int, typer.Argument(help="the token's id (see `tokens list`)")],
    overlap_hours: Annotated[int, typer.Option(help="how long the old token keeps working", min=0, max=720)] = 24,
    valid_days: Annotated[Optional[int], typer.Option(help="the new token's lifetime (default: the role's)", min=1, max=3650)] = None,
) -> None:
    """Issue a replacement with the same name, role and scope; the old token keeps working for --overlap-hours."""
    from datetime import timedelta

    from vardkoll.server.api.tokens import lifetime
    from vardkoll.server.auth import RetiredToken, Role, UnknownToken, rotate_token
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage.registry_tables import ApiToken

    with _transaction() as session:
        old = session.get(ApiToken, token_id)
        try:
            new, secret, old = rotate_token(
                session, token_id, timedelta(hours=overlap_hours), lifetime(ServerSettings(), Role(old.role) if old else Role.admin, valid_days)
            )
        except (UnknownToken, RetiredToken) as exc:
            _fail(str(exc))
        _record(session, "tokens rotate", new.unit, f"token {token_id} replaced by {new.id}")
    _said(
        f"token {new.id} replaces {token_id} '{new.name}', valid until {new.expires_at:%Y-%m-%d}; "
        f"token {token_id} stops working at {old.expires_at:%Y-%m-%d %H:%M} UTC. The new secret follows; it is not shown again."
    )
    typer.echo(secret)


@devices_app.command("add")
def devices_add(unit: Annotated[str, typer.Argument(help="HSA-id")], device: Annotated[str, typer.Argument(help="device id")]) -> None:
    """Register a device so that it may publish for the unit (outside dev mode only registered devices may)."""
    from datetime import datetime, timezone

    from vardkoll.server.registry import BadDeviceId, UnknownUnit, register_device

    with _transaction() as session:
        try:
            _, change = register_device(session, unit, device, datetime.now(timezone.utc))
        except BadDeviceId as exc:
            _fail(str(exc))
        except UnknownUnit:
            _fail(f"unit {unit} is not registered; add it with `vardkoll admin units add` first")
        if change != "unchanged":
            _record(session, "devices add", unit, f"device {device}")
    said = {
        "registered": f"registered device {device} for {unit}",
        "registered again": f"registered device {device} for {unit} again (it was retired)",
        "unchanged": f"device {device} was already registered for {unit}; nothing changed",
    }
    _said(said[change])


@devices_app.command("retire")
def devices_retire(unit: Annotated[str, typer.Argument(help="HSA-id")], device: Annotated[str, typer.Argument(help="device id")]) -> None:
    """Retire a device: it may no longer publish (its API tokens and, with broker accounts, its broker
    account go); its history stays."""
    from vardkoll.server.provisioning import BrokerAccountError, retire_device
    from vardkoll.server.registry import UnknownDevice
    from vardkoll.server.services import broker_accounts
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage.registry_tables import DeviceRow

    accounts = broker_accounts(ServerSettings())
    try:
        with _transaction() as session:
            row = session.get(DeviceRow, (unit, device))
            was_retired = row is not None and row.retired_at is not None
            retire_device(session, unit, device, accounts)
            _record(session, "devices retire", unit, f"device {device}")
    except UnknownDevice:
        _fail(f"device {device} is not registered for {unit}")
    except BrokerAccountError as exc:
        _fail(f"device {device} of {unit} was not retired (nothing changed): {exc}")
    broker = "; its broker account is deleted" if accounts is not None else "; remove its broker account by hand (manual broker setup)"
    _said(f"device {device} of {unit} was already retired{broker}" if was_retired else f"retired device {device} of {unit}{broker}")


@devices_app.command("push-config")
def devices_push_config(
    unit: Annotated[str, typer.Argument(help="HSA-id")],
    device: Annotated[str, typer.Argument(help="device id (registered for the unit)")],
    config_file: Annotated[str, typer.Argument(help="a TOML or JSON file of the sections to set: mqtt, publisher, poll_interval_s, connectors")],
    version: Annotated[str, typer.Option(help="this version's name; the device applies each version once")],
    by: Annotated[str, typer.Option(help="who pushes it, for the history")] = "vardkoll admin",
) -> None:
    """Publish a remote config version for a device (retained) and record it in its history; the device
    rolls back if it cannot reconnect with it. The same as PUT /api/v1/units/UNIT/devices/DEVICE/config."""
    import tomllib
    from datetime import datetime, timezone
    from pathlib import Path

    from vardkoll.server import remote_config as dc
    from vardkoll.server.settings import ServerSettings

    path = Path(config_file)
    try:
        text = path.read_text()
        config = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except OSError as exc:
        _fail(f"{path}: cannot read it ({exc.strerror})")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        _fail(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}")
    with _transaction() as session:
        try:
            pushed = dc.push_config(session, dc.broker_publisher(ServerSettings()), unit, device, version, config, by, datetime.now(timezone.utc))
        except (dc.ConfigRefused, dc.UnknownDevice, dc.RetiredDevice, dc.ConcurrentPush) as exc:
            _fail(str(exc) + ("; register it with `vardkoll admin devices add`" if isinstance(exc, dc.UnknownDevice) else ""))
        except dc.SameVersion as exc:
            _fail(f"{exc}; the collector ignores a version it has handled: give this one a new --version")
        except dc.BrokerUnavailable as exc:
            _fail(f"not published, nothing recorded: {exc}")
        _record(session, "devices push-config", unit, f"device {device} version {pushed.version}")
    _said(
        f"published config version {pushed.version} for device {device} of {unit} (retained on {pushed.topic}); "
        "its heartbeat reports whether it was applied or rolled back (`vardkoll admin devices config` or Installationsvy)"
    )


@devices_app.command("config")
def devices_config(unit: Annotated[str, typer.Argument(help="HSA-id")], device: Annotated[str, typer.Argument(help="device id")]) -> None:
    """The remote config versions pushed to a device, newest first, and what its last heartbeat reported."""
    from vardkoll.server import remote_config as dc
    from vardkoll.server.storage.registry_tables import DeviceRow

    with _transaction() as session:
        row = session.get(DeviceRow, (unit, device))
        if row is None:
            _fail(f"device {device} is not registered for {unit}")
        history = dc.config_history(session, unit, device)
        reported = dc.reported_config(row.last_status)
    if reported is None:
        _said("the device has not reported its config state (no heartbeat with a config yet)")
    else:
        rejected = f"; last refused or rolled back: {reported.rejected_version} ({reported.rejected_reason})" if reported.rejected_version else ""
        _said(f"device reports: {reported.state}, version in force {reported.version or 'its own file'}{rejected}")
    if not history:
        _said(f"no config version has been pushed to {device}")
        return
    newest = dc.outcome_of(history[0].version, reported)
    _table(
        ["version", "pushed at", "by", "sections", "outcome"],
        [
            [v.version, f"{v.pushed_at:%Y-%m-%d %H:%M:%S}", v.pushed_by, json.dumps(v.sections, ensure_ascii=False), (newest or "") if i == 0 else ""]
            for i, v in enumerate(history)
        ],
    )


@devices_app.command("list")
def devices_list(unit: Annotated[str, typer.Argument(help="HSA-id")]) -> None:
    """List a unit's devices with their last known status."""
    from vardkoll.server.registry import unit_devices

    with _transaction() as session:
        rows = unit_devices(session, unit)
        _table(
            ["device", "status", "last seen", "registered", "retired"],
            [[r.device, r.status or "", r.last_seen_at or "", r.registered_at, r.retired_at or ""] for r in rows],
        )
