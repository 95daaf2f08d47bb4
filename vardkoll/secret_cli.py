"""`vardkoll collector export-secret` / `import-secret`: move the pseudonym secret to a replacement device.

    vardkoll collector export-secret --out /media/usb/vc-norrby.vksecret   (asks for a passphrase twice)
    vardkoll collector import-secret /media/usb/vc-norrby.vksecret         (on the new device)

The secret's path comes from the collector config (`pseudonyms.secret_file`), or `--secret-file`. The
passphrase comes from a prompt, or the first line of `--passphrase-file`. Messages are in Swedish (for
installers); failures end with exit code 2 and one line, never a traceback.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer

from vardkoll.collector.secret_export import (
    SecretExportError,
    export_secret,
    fingerprint,
    import_secret,
    read_secret_file_for_export,
    write_secret_file,
)

DEFAULT_CONFIG = Path("/etc/vardkoll-collector/collector.toml")
DEFAULT_SECRET = Path("/var/lib/vardkoll-collector/pseudonym.key")  # where `enroll` puts it


def _fail(message: str) -> None:
    typer.echo(f"vardkoll: {message}", err=True)
    raise typer.Exit(2)


def _target(config: Path, secret_file: Path | None) -> tuple[Path, str | None, str | None]:
    """The secret's path, and the unit and device of the config when one was read."""
    if secret_file is not None:
        return secret_file, None, None
    if not config.exists():
        # A replacement device before `enroll`: the secret goes where enrollment will look for it.
        typer.echo(f"ingen konfiguration i {config}; använder {DEFAULT_SECRET} (ange annars --secret-file FIL)", err=True)
        return DEFAULT_SECRET, None, None
    from vardkoll.collector.config import ConfigError, load_config

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        _fail(f"kan inte läsa insamlarens konfiguration: {exc} (ange --config FIL eller --secret-file FIL)")
        raise  # unreachable: _fail exits
    return loaded.pseudonyms.secret_file, loaded.unit, loaded.device


def _passphrase(passphrase_file: Path | None, confirm: bool) -> str:
    if passphrase_file is not None:
        try:
            lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            _fail(f"kan inte läsa lösenfrasfilen {passphrase_file} ({exc.strerror})")
        except UnicodeDecodeError:
            _fail(f"lösenfrasfilen {passphrase_file} är inte UTF-8-text")
        if not lines or not lines[0]:
            _fail(f"lösenfrasfilen {passphrase_file} är tom: lösenfrasen ska stå på första raden")
        return lines[0]
    if not sys.stdin.isatty():
        _fail("ingen terminal att fråga efter lösenfrasen i; ange --passphrase-file FIL")
    try:
        first = getpass.getpass("Lösenfras: ")
        if confirm and getpass.getpass("Upprepa lösenfrasen: ") != first:
            _fail("lösenfraserna var olika; ingenting gjordes")
    except (EOFError, KeyboardInterrupt):
        _fail("avbrutet; ingenting gjordes")
    return first


def run_export(out: Path, config: Path, secret_file: Path | None, passphrase_file: Path | None, force: bool) -> None:
    path, unit, device = _target(config, secret_file)
    if out.exists() and not force:
        _fail(f"{out} finns redan; välj ett annat filnamn eller ange --force för att skriva över den")
    try:
        secret = read_secret_file_for_export(path)
        document = export_secret(secret, _passphrase(passphrase_file, confirm=True), unit=unit, device=device)
    except SecretExportError as exc:
        _fail(str(exc))
        return
    from vardkoll.collector.enrollment import write_private

    try:
        write_private(out, document.decode())
    except OSError as exc:
        _fail(f"kan inte skriva {out} ({exc.strerror})")
    typer.echo(
        f"exporterade pseudonymhemligheten krypterad till {out} (läge 0600, kontrollsumma {fingerprint(secret)}). Förvara filen och lösenfrasen åtskilda.",
        err=True,
    )


def run_import(source: Path, config: Path, secret_file: Path | None, passphrase_file: Path | None, force: bool) -> None:
    path, unit, _ = _target(config, secret_file)
    if path.exists() and not force:
        _fail(
            f"{path} finns redan: enheten har en egen pseudonymhemlighet. Ange --force för att ersätta den "
            "(händelser som redan skickats med den gamla hemligheten länkas då inte till nya)"
        )
    try:
        document = source.read_bytes()
    except OSError as exc:
        _fail(f"kan inte läsa {source} ({exc.strerror})")
        return
    try:
        imported = import_secret(document, _passphrase(passphrase_file, confirm=False), source=str(source))
    except SecretExportError as exc:
        _fail(str(exc))
        return
    if unit is not None and imported.unit is not None and imported.unit != unit:
        typer.echo(f"obs: exporten gjordes för enheten {imported.unit}, men den här insamlaren är för {unit}", err=True)
    try:
        write_secret_file(path, imported.secret)
    except OSError as exc:
        _fail(f"kan inte skriva {path} ({exc.strerror}); kör kommandot som insamlarens användare")
    origin = f" från {imported.device}" if imported.device else ""
    typer.echo(
        f"importerade pseudonymhemligheten{origin} till {path} (läge 0600, kontrollsumma {fingerprint(imported.secret)}). Starta om insamlaren.",
        err=True,
    )
