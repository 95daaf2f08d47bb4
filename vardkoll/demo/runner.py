"""`vardkoll demo`: a broker, the server on SQLite, and clinics whose systems feed real collectors, in one command.

In order: the broker (`broker.py`), the server in this process, the clinics' simulated systems
(`clinics.py`, `systems/`), one collector process per clinic enrolled with a one-time code (`edge.py`),
then the timeline that makes the systems write. Ctrl-C stops them in the reverse order: the timeline,
the collectors (each says `offline` and closes its outbox), the serial devices and the FHIR server, the
web server, the broker. `demo.json` in the demo's folder says where everything is (for tests and tools).
"""

from __future__ import annotations

import secrets
import signal
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import orjson
import uvicorn
from rich.console import Console
from sqlalchemy import func, select

from vardkoll.collector.enrollment import write_private
from vardkoll.server.app import create_app
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import DeviceRow, UnitRow
from vardkoll.server.storage.tables import StoredEvent

from .broker import start_broker, wait_for_port
from .clinics import STOCKHOLM, Clinic, Timeline, build_clinics
from .edge import CollectorProcess, Collectors, bridge_arguments, collector_arguments, command, enroll_collector
from .systems.fhir_server import FhirServer

REGION = "Region Demo"
STATUS_EVERY_S = 5.0
_SAVING = threading.Lock()


def run_demo(port: int = 8000, units: int = 4, folder: Path | None = None, broker_kind: str = "auto") -> None:
    console = Console()
    say = lambda text: console.print(text, soft_wrap=True, highlight=False)  # noqa: E731 - addresses print unwrapped
    started = time.monotonic()
    folder = folder or Path(tempfile.mkdtemp(prefix="vardkoll-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    broker = start_broker(kind=broker_kind)
    token = secrets.token_urlsafe(24)
    settings = ServerSettings(
        database_url=f"sqlite:///{folder / 'vardkoll.db'}",
        mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
        share_group="vardkoll-ingest" if broker.mqtt_v5 else None,
        mqtt_protocol="5" if broker.mqtt_v5 else "3.1.1",
        admin_token=token,
        dev=True,
    )
    services = build_services(settings, apply_migrations=True)

    def delivered(unit: str) -> int:
        query = select(func.count()).select_from(StoredEvent).where(StoredEvent.unit == unit)
        with services.sessions() as session:
            return session.scalar(query) or 0

    fhir = FhirServer()
    now = datetime.now(timezone.utc).replace(microsecond=0)  # the past ends here; printed in whole seconds
    clinics, intent, writes, first_day = build_clinics(units, folder / "clinics", folder / "intended-events.jsonl", fhir, now)
    _register_units(services, clinics)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning"))
    server_thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    server_thread.start()
    wait_for_port(port, timeout_s=30)
    base = f"http://127.0.0.1:{port}"
    fhir.start()

    state: dict[str, Any] = {
        "port": port,
        "base_url": base,
        "admin_token": token,
        "folder": str(folder),
        "region": REGION,
        "intended_events": str(intent.path),
        "first_day": first_day.isoformat(),
        "today": now.astimezone(STOCKHOLM).date().isoformat(),
        "history_until": now.isoformat(),
        "history_complete_after_s": None,
        "clinics": [],
    }
    collectors = Collectors(report=lambda text: say(f"  {text}"))
    for clinic in clinics:
        collectors.add(_collector_for(clinic, base, token, broker.mqtt_v5, lambda: _save(folder, state, clinics, collectors)))
    for clinic in clinics:
        if clinic.serial is not None:
            clinic.serial.start()
    collectors.start()
    timeline = Timeline(writes, [s for c in clinics for s in c.systems], start=now.timestamp())
    timeline.begin()
    _save(folder, state, clinics, collectors)

    today = now.astimezone(STOCKHOLM).date()
    region = REGION.replace(" ", "%20")
    say(f"[bold]vardkoll demo[/] is running ({broker.kind} broker on port {broker.port}, SQLite and the clinics' files in {folder})")
    say(f"  dashboard:         {base}/logga-in (log in with the admin token)")
    say(f"  API documentation: {base}/docs")
    say(f"  admin token:       {token}")
    say(f"  figures:           curl -H 'Authorization: Bearer {token}' '{base}/api/v1/compliance?metric=telephone&region={region}&from={first_day}&to={today}'")
    say("What you are looking at (docs/demo.md):")
    for clinic, process in zip(clinics, collectors.processes):
        say(f"  {clinic.name} ({clinic.unit}): {clinic.describe()}")
        say(f"      → collector {clinic.device} (pid {process.pid}): vardkoll {' '.join(process.arguments)}")
    say(f"  The systems write into {folder / 'clinics'}; what they meant to convey, as events: {intent.path}")
    say(
        f"  Once history is in, the API's figures as of the start equal: vardkoll replay {intent.path} --from {first_day} --to {today} --as-of {now.isoformat()}"
    )
    say(f"  History ({first_day} to now) streams in first, then today's events as they happen. Started in {time.monotonic() - started:.1f} s.")
    say("Press Ctrl-C to stop.")

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    next_status = time.monotonic() + STATUS_EVERY_S
    while not stopping.wait(0.25):
        if state["history_complete_after_s"] is None and timeline.history_written_at is not None and _history_delivered(clinics, intent, delivered):
            state["history_complete_after_s"] = round(time.monotonic() - started, 1)
            _save(folder, state, clinics, collectors)
            say(f"  history complete: every record of the past four weeks is at the server, {state['history_complete_after_s']} s after the start")
            if broker.mqtt_v5:  # the server publishes config versions over MQTT 5
                _push_remote_config(base, token, clinics, say)
        if time.monotonic() >= next_status:
            next_status = time.monotonic() + STATUS_EVERY_S
            say(_status_line(services, clinics, intent, delivered, timeline))
    say("stopping…")
    timeline.stop()
    collectors.stop()
    for clinic in clinics:
        for system in clinic.systems:
            system.close()
    intent.close()
    fhir.stop()
    server.should_exit = True
    server_thread.join(timeout=15)
    broker.stop()
    say("stopped.")


def _collector_for(clinic: Clinic, base: str, token: str, mqtt_v5: bool, on_change) -> CollectorProcess:
    home = clinic.folder / "collector"
    home.mkdir(parents=True, exist_ok=True)
    config = enroll_collector(base, token, clinic.unit, clinic.device, home, clinic.connectors(), mqtt_v5)
    if clinic.serial is not None:
        bridge = home / "bridge.toml"
        bridge.write_text(clinic.serial.bridge_config())
        arguments = bridge_arguments(bridge, config)
    else:
        arguments = collector_arguments(config)
    return CollectorProcess(clinic.unit, command(arguments), home / "collector.log", arguments, on_change=on_change)


# What an installer might change from Installationsvy once a clinic runs: a slower heartbeat. Each
# collector tries it (reconnecting with it) and reports "applied" in its heartbeat, or rolls back.
REMOTE_CONFIG = {"version": "demo-1", "sections": {"publisher": {"heartbeat_interval_s": 10}}}


def _push_remote_config(base: str, token: str, clinics: list[Clinic], say: Callable[[str], None]) -> None:
    for clinic in clinics:
        response = httpx.put(
            f"{base}/api/v1/units/{clinic.unit}/devices/{clinic.device}/config", json=REMOTE_CONFIG, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        if response.status_code != 200:
            say(f"  remote config for {clinic.device} not pushed: HTTP {response.status_code}")
            return
    say(f"  remote config version {REMOTE_CONFIG['version']} pushed to every collector (heartbeat every 10 s); Installationsvy shows what each made of it")


def _history_delivered(clinics: list[Clinic], intent, delivered) -> bool:
    if any(c.serial is not None and c.serial.waiting for c in clinics):
        return False
    return all(delivered(c.unit) >= intent.count_by_unit.get(c.unit, 0) for c in clinics)


def _status_line(services, clinics: list[Clinic], intent, delivered, timeline: Timeline) -> str:
    stored = sum(delivered(c.unit) for c in clinics)
    written = sum(intent.count_by_unit.values())
    depths = []
    with services.sessions() as session:
        for row in session.scalars(select(DeviceRow)):
            try:
                depths.append(int(orjson.loads(row.last_status or "{}").get("outbox", {}).get("depth", 0)))
            except (ValueError, AttributeError, TypeError):
                pass
    up_to = timeline.written_up_to
    when = datetime.fromtimestamp(up_to, STOCKHOLM).strftime("%Y-%m-%d %H:%M") if up_to else "–"
    return (
        f"  systems have written up to {when}: {written:,} events meant, {stored:,} stored by the server, "
        f"{sum(depths):,} in the collectors' outboxes, {timeline.still_to_happen:,} records still to come today"
    )


def _save(folder: Path, state: dict[str, Any], clinics: list[Clinic], collectors: Collectors) -> None:
    state["clinics"] = [
        {
            "unit": c.unit,
            "name": c.name,
            "device": c.device,
            "systems": [s.name for s in c.systems],
            "phone": c.phone,
            "records": c.records,
            "pid": p.pid,
            "restarts": p.restarts,
            "folder": str(c.folder),
        }
        for c, p in zip(clinics, collectors.processes)
    ]
    with _SAVING:  # it holds the admin token: mode 0600
        write_private(folder / "demo.json", orjson.dumps(state, option=orjson.OPT_INDENT_2).decode())


def _register_units(services, clinics: list[Clinic]) -> None:
    with services.sessions.begin() as session:
        for clinic in clinics:
            if session.get(UnitRow, clinic.unit) is None:
                session.add(UnitRow(unit=clinic.unit, name=clinic.name, region=REGION))
    services.units.invalidate()
