"""The checks of `vardkoll collector doctor`, one function per area; each returns findings and never raises.

Installer-facing text is Swedish; it names the file, key or address that is wrong and what to do.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import ssl
import stat
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from vardkoll.protocol.topics import device_client_id

from ..config import CollectorConfig, MqttConfig, unlinked_callback_exports
from ..connectors import REGISTRY
from . import clock
from .findings import Finding, error, ok, warning

MIB = 1024 * 1024
CLOCK_WARN_S = 60.0
CLOCK_FAIL_S = 300.0
STALE_OUTBOX_S = 24 * 3600


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- remote config ------------------------------------------------------------------------------------


def effective_config(config: CollectorConfig) -> tuple[CollectorConfig, list[Finding]]:
    """The config the collector runs with: the file's, with the last good remote version over it."""
    from .. import remote_config

    area = "Fjärrkonfiguration"
    if not config.remote_config.enabled:
        return config, [ok(area, "avstängd; filens inställningar gäller")]
    state = remote_config.load_state(config.remote_state_file)
    findings = []
    effective = config
    if state.applied is not None:
        try:
            effective = remote_config.merge(config, state.applied)
            findings.append(ok(area, f"version {state.applied.version} gäller (kontrollerna nedan gäller den)"))
        except remote_config.RemoteConfigRefused:
            findings.append(
                warning(
                    area,
                    f"version {state.applied.version} passar inte längre ihop med konfigurationsfilen; filens inställningar gäller",
                    "Publicera en ny version för enheten (vardkoll admin devices push-config).",
                )
            )
    else:
        findings.append(ok(area, "ingen version har tagits emot; filens inställningar gäller"))
    if state.outcome in ("rolled_back", "refused") and state.rejected_version is not None:
        what = "rullades tillbaka" if state.outcome == "rolled_back" else "avvisades"
        findings.append(
            warning(
                area,
                f"version {state.rejected_version} {what}: {state.rejected_reason}",
                "Rätta versionen (t.ex. brokeradressen) och publicera den under ett nytt versionsnamn.",
            )
        )
    return effective, findings


# -- secrets ------------------------------------------------------------------------------------------


def secret_files(config: CollectorConfig) -> list[Finding]:
    findings = []
    key = config.pseudonyms.secret_file
    area = "Pseudonymnyckel"
    if not key.exists():
        findings.append(
            warning(
                area,
                f"{key} finns inte ännu; den skapas när insamlaren startar första gången",
                "Ersätter enheten en gammal? Lägg då tillbaka nyckeln från säkerhetskopian innan start, annars går historiken inte att koppla ihop.",
            )
        )
    else:
        try:
            mode = _mode(key)
            text = key.read_text().strip()
        except OSError as exc:
            findings.append(
                error(area, f"{key} går inte att läsa ({exc.strerror})", f"Ge användaren som kör insamlaren läsrätt: chown vardkoll-collector {key}")
            )
        else:
            if mode & 0o077:
                findings.append(error(area, f"{key} har läsrätt för andra (läge {mode:o}); insamlaren vägrar starta", f"Kör: chmod 600 {key}"))
            elif not _is_hex_secret(text):
                findings.append(error(area, f"{key} innehåller ingen giltig nyckel", "Återställ filen från säkerhetskopian."))
            else:
                findings.append(ok(area, f"{key} finns, läge 600"))
    for name, path in _credential_files(config):
        if path is None:
            continue
        if not path.exists():
            findings.append(error(name, f"{path} finns inte", "Lägg filen på plats (läge 600), eller rätta sökvägen i konfigurationen."))
            continue
        mode = _mode(path)
        if mode & 0o007:
            findings.append(error(name, f"{path} kan läsas av alla (läge {mode:o})", f"Kör: chmod 600 {path}"))
        elif not os.access(path, os.R_OK):
            findings.append(
                error(
                    name,
                    f"{path} går inte att läsa för den här användaren",
                    f"Ge insamlarens användare läsrätt, t.ex. chgrp vardkoll-collector {path} && chmod 640 {path}",
                )
            )
        else:
            findings.append(ok(name, f"{path} finns, läge {mode:o}"))
    return findings


def _is_hex_secret(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) >= 16
    except ValueError:
        return False


def _credential_files(config: CollectorConfig) -> list[tuple[str, Path | None]]:
    files: list[tuple[str, Path | None]] = [("MQTT-lösenordsfil", config.mqtt.password_file)]
    for entry in config.connectors:
        token = entry.settings.get("token_file")
        if token:
            files.append((f"Tokenfil för källan {entry.instance_name}", Path(token)))
    return files


# -- broker -------------------------------------------------------------------------------------------


def broker(config: CollectorConfig, timeout_s: float, client_factory: Callable[..., Any] | None = None) -> list[Finding]:
    """Connect once with the device's own credentials (TLS when configured) and report the CONNACK."""
    mqtt = config.mqtt
    area = "Broker"
    where = f"{mqtt.host}:{mqtt.port}"
    tls = "med TLS" if mqtt.tls else "utan TLS"
    try:
        password = mqtt.password_value()
    except OSError as exc:
        return [error(area, f"lösenordsfilen {mqtt.password_file} går inte att läsa ({exc.strerror})", "Rätta [mqtt] password_file.")]
    try:
        reason = _connect(device_client_id(config.unit, config.device), mqtt, password, timeout_s, client_factory)
    except ssl.SSLError as exc:
        return [
            error(
                area,
                f"TLS-handskakningen med {where} misslyckades ({exc.reason or type(exc).__name__})",
                "Kontrollera att adressen är brokerns och att [mqtt] ca_file pekar på rätt CA-certifikat.",
            )
        ]
    except socket.gaierror:
        return [error(area, f"namnet {mqtt.host} går inte att slå upp", "Kontrollera [mqtt] url och att enheten har DNS.")]
    except (ConnectionRefusedError, TimeoutError, socket.timeout, OSError) as exc:
        what = "vägrade anslutningen" if isinstance(exc, ConnectionRefusedError) else f"svarade inte ({type(exc).__name__})"
        return [error(area, f"{where} {what}", "Kontrollera [mqtt] url och port, att brokern körs och att brandväggen släpper igenom porten.")]
    if reason is None:
        return [
            error(
                area,
                f"{where} svarade inte på inloggningen inom {timeout_s:.0f} s",
                "Kontrollera att porten är en MQTT-port och om TLS ska användas (mqtts://).",
            )
        ]
    code, text = reason
    if code == 0:
        return [ok(area, f"ansluten till {where} {tls} som {mqtt.username or '(anonym)'}")]
    if code in (0x86, 0x87, 4, 5):  # bad user name or password / not authorised (v5 and v3 codes)
        return [
            error(
                area,
                f"{where} nekade inloggningen för {mqtt.username or '(anonym)'} ({text})",
                "Kontrollera [mqtt] username och lösenordet i password_file mot brokerns användare för enheten.",
            )
        ]
    return [error(area, f"{where} nekade anslutningen ({text})", "Kontakta den som driftar brokern med felmeddelandet.")]


def _connect(client_id: str, mqtt: MqttConfig, password: str | None, timeout_s: float, client_factory: Callable[..., Any] | None) -> tuple[int, str] | None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    # The collector's own client id: the broker account is bound to it (docs/server.md, "Broker
    # accounts"), so no other id would be let in. A running collector is thrown off for a moment and
    # reconnects; a clean start leaves it a fresh session (acks it missed: it re-sends, nothing is lost).
    make = client_factory or (lambda: paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5))
    client = make()
    answered = threading.Event()
    result: list[tuple[int, str]] = []

    def on_connect(client, userdata, flags, reason_code, properties=None):
        result.append((int(getattr(reason_code, "value", reason_code)), str(reason_code)))
        answered.set()

    client.on_connect = on_connect
    if mqtt.username:
        client.username_pw_set(mqtt.username, password)
    if mqtt.tls:
        client.tls_set(ca_certs=str(mqtt.ca_file) if mqtt.ca_file else None)
    client.connect_timeout = timeout_s
    client.connect(mqtt.host, mqtt.port, keepalive=max(5, int(timeout_s) * 2))
    client.loop_start()
    try:
        answered.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0] if result else None


# -- clock --------------------------------------------------------------------------------------------


def clock_state(
    offsets: list[clock.ClockComparison], now: Callable[[], float] = time.time, ntp: Callable[[], tuple[bool | None, str]] = clock.ntp_state
) -> list[Finding]:
    area = "Klocka"
    findings = []
    synced, how = ntp()
    if synced is True:
        findings.append(ok(area, f"synkroniserad med NTP ({how})"))
    elif synced is False:
        findings.append(
            error(
                area,
                f"inte synkroniserad med NTP ({how}); händelsernas tider kan bli fel",
                "Kör: sudo timedatectl set-ntp true, och se till att enheten når en NTP-server (UDP 123).",
            )
        )
    else:
        findings.append(warning(area, "NTP-läget går inte att läsa på den här enheten", "Kontrollera tiden för hand: date -u"))
    current = datetime.fromtimestamp(now(), timezone.utc)
    if current < clock.earliest_plausible():
        findings.append(
            error(area, f"klockan visar {current:%Y-%m-%d %H:%M} UTC, före installationen av programmet", "Ställ klockan (NTP) innan insamlaren startar.")
        )
    for comparison in offsets:
        off = comparison.offset_s
        text = f"{abs(off):.0f} s {'före' if off > 0 else 'efter'} {comparison.source}"
        if abs(off) > CLOCK_FAIL_S:
            findings.append(error(area, text, "Synkronisera klockan med NTP innan insamlaren startar."))
        elif abs(off) > CLOCK_WARN_S:
            findings.append(warning(area, text, "Kontrollera NTP-synkroniseringen."))
        else:
            findings.append(ok(area, f"stämmer med {comparison.source} (skillnad {abs(off):.0f} s)"))
    return findings


def server_clock(url: str, timeout_s: float, transport: Any = None, now: Callable[[], float] = time.time) -> clock.ClockComparison | None:
    """Our clock against the Date header of any answer from `url` (None when it cannot be reached)."""
    import httpx

    sent = now()
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            response = client.get(url)
    except httpx.HTTPError:
        return None
    offset = clock.offset_from_date_header(response.headers.get("Date"), sent, now())
    return None if offset is None else clock.ClockComparison(_origin(url), offset)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- sources ------------------------------------------------------------------------------------------


def sources(
    config: CollectorConfig, timeout_s: float, transport: Any = None, now: Callable[[], float] = time.time
) -> tuple[list[Finding], list[clock.ClockComparison]]:
    findings: list[Finding] = []
    clocks: list[clock.ClockComparison] = []
    if not config.connectors:
        findings.append(
            warning(
                "Källor", "inga källor är konfigurerade; insamlaren skickar bara status", "Lägg till en [[connectors]]-tabell per källa (docs/collector.md)."
            )
        )
    for name in unlinked_callback_exports(config.connectors):
        findings.append(
            error(
                f"Källa {name}",
                "återuppringningsexporten är inte kopplad till telefonsystemets samtal: varje återuppringning skulle räknas som ett samtal till",
                "Ange i [connectors.columns] queue_call_id = kolumnen med telefonsystemets samtals-id (Asterisks uniqueid); "
                "är exportens call_id samma id, ange samma kolumnnamn.",
            )
        )
    for entry in config.connectors:
        area = f"Källa {entry.instance_name}"
        cls = REGISTRY.get(entry.type)
        if cls is None:
            findings.append(error(area, f"okänd typ {entry.type!r}", f"Använd en av: {', '.join(sorted(REGISTRY))}."))
            continue
        try:
            settings = cls.Config.parse(entry.settings)
        except ValueError as exc:
            problems = str(exc)
            findings.append(error(area, f"inställningarna är fel: {problems}", "Rätta källans [[connectors]]-tabell."))
            continue
        if entry.type in ("callback_csv", "listing_export"):
            findings.append(_folder(area, settings.folder, settings.pattern))
        elif entry.type == "asterisk_queue_log":
            findings.append(_file(area, settings.path))
            if settings.refused_log is not None:
                findings.append(_file(area + " (avvisade samtal)", settings.refused_log))
        elif entry.type == "fhir_r4":
            finding, comparison = _fhir(area, settings, timeout_s, transport, now)
            findings.append(finding)
            if comparison is not None:
                clocks.append(comparison)
    return findings, clocks


def _folder(area: str, folder: Path, pattern: str) -> Finding:
    if not folder.is_dir():
        return error(area, f"mappen {folder} finns inte", "Skapa mappen eller rätta `folder`; kontrollera att exporten skriver dit.")
    if not os.access(folder, os.R_OK | os.X_OK):
        return error(area, f"mappen {folder} går inte att läsa för den här användaren", f"Ge insamlarens användare läsrätt till {folder}.")
    count = sum(1 for path in folder.glob(pattern) if path.is_file())
    return ok(area, f"mappen {folder} går att läsa ({count} filer matchar {pattern})")


def _file(area: str, path: Path) -> Finding:
    if not path.exists():
        return error(area, f"{path} finns inte", "Rätta sökvägen, eller kontrollera att systemet skriver loggen dit.")
    if not os.access(path, os.R_OK):
        return error(area, f"{path} går inte att läsa för den här användaren", f"Ge insamlarens användare läsrätt (t.ex. gruppen asterisk) till {path}.")
    return ok(area, f"{path} går att läsa ({path.stat().st_size} byte)")


def _fhir(area: str, settings: Any, timeout_s: float, transport: Any, now: Callable[[], float]) -> tuple[Finding, clock.ClockComparison | None]:
    from ..connectors.fhir_r4.client import FhirClient, FhirError, FhirUnavailable

    client = FhirClient(
        settings.base_url,
        settings.token,
        timeout_s=min(timeout_s, settings.timeout_s),
        verify=str(settings.ca_file) if settings.ca_file else True,
        transport=transport,
        wall_clock=now,
    )
    try:
        statement = client.get_json("metadata")
    except FhirUnavailable as exc:
        return error(area, f"FHIR-servern svarar inte: {exc}", "Kontrollera base_url, nätet och brandväggen mot journalsystemet."), None
    except FhirError as exc:
        action = "Kontrollera token (token_file/token_env) och dess behörigheter." if exc.status in (401, 403) else "Kontrollera base_url."
        return error(area, f"FHIR-servern svarade med fel: {exc}", action), None
    finally:
        client.close()
    if statement.get("resourceType") != "CapabilityStatement":
        return error(area, f"{settings.base_url}/metadata är inget CapabilityStatement", "Kontrollera att base_url är FHIR-serverns rot."), None
    version = statement.get("fhirVersion", "okänd")
    finding = ok(area, f"FHIR-servern {settings.base_url} svarar (FHIR {version})")
    if not str(version).startswith("4.0"):
        finding = warning(area, f"FHIR-servern svarar med FHIR {version}, inte R4 (4.0.x)", "Be journalleverantören om R4-adressen.")
    return finding, server_clock(f"{settings.base_url}/metadata", timeout_s, transport, now)


# -- outbox and disk ----------------------------------------------------------------------------------


def outbox(config: CollectorConfig, now: Callable[[], float] = time.time) -> list[Finding]:
    box = config.outbox
    folder = box.path.parent
    findings = []
    if folder.exists():
        if not os.access(folder, os.W_OK | os.X_OK):
            return [error("Utkorg", f"mappen {folder} går inte att skriva i", f"Kör: sudo chown vardkoll-collector {folder}")]
    else:
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK):
            return [error("Utkorg", f"mappen {folder} finns inte och kan inte skapas", f"Kör: sudo install -d -o vardkoll-collector {folder}")]
    depth = stored = 0
    oldest = None
    if box.path.exists():
        if not os.access(box.path, os.R_OK | os.W_OK):
            return [error("Utkorg", f"{box.path} går inte att skriva i", f"Kör: sudo chown vardkoll-collector {box.path}")]
        try:
            depth, stored, oldest = _outbox_numbers(box.path)
        except sqlite3.Error as exc:
            return [error("Utkorg", f"{box.path} går inte att läsa som databas ({exc})", "Flytta undan filen (den kan vara skadad) och starta om insamlaren.")]
        when = f", äldsta från {datetime.fromtimestamp(oldest, timezone.utc):%Y-%m-%d %H:%M} UTC" if oldest is not None else ""
        if oldest is not None and now() - oldest > STALE_OUTBOX_S:
            findings.append(
                warning("Utkorg", f"{depth} händelser väntar{when}", "Händelser har väntat över ett dygn: kontrollera brokeranslutningen (se Broker ovan).")
            )
        else:
            findings.append(ok("Utkorg", f"{box.path}: {depth} händelser väntar{when}"))
    else:
        findings.append(ok("Utkorg", f"{box.path} skapas vid start; mappen går att skriva i"))
    existing = folder if folder.exists() else next(p for p in folder.parents if p.exists())
    free = shutil.disk_usage(existing).free
    remaining = max(0, box.max_bytes - stored)
    text = f"{free // MIB} MiB ledigt; utkorgens budget är {box.max_bytes // MIB} MiB varav {stored // MIB} MiB används"
    if free < remaining:
        findings.append(error("Disk", text, "Frigör utrymme eller sänk [outbox] max_bytes så att budgeten ryms på disken."))
    elif free < 2 * remaining:
        findings.append(warning("Disk", text, "Lite marginal: SQLite behöver utrymme utöver budgeten. Frigör utrymme eller sänk max_bytes."))
    else:
        findings.append(ok("Disk", text))
    return findings


def _outbox_numbers(path: Path) -> tuple[int, int, float | None]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        counters = dict(db.execute("SELECT name, value FROM counters WHERE name IN ('events', 'bytes')").fetchall())
        oldest = db.execute("SELECT min(at_epoch) FROM outbox").fetchone()[0]
    finally:
        db.close()
    return int(counters.get("events", 0)), int(counters.get("bytes", 0)), oldest
