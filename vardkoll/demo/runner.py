"""`vardkoll demo`: a broker, the server on SQLite and simulated clinics, on this machine, in one command."""

from __future__ import annotations

import secrets
import signal
import tempfile
import threading
from pathlib import Path

import uvicorn
from rich.console import Console

from vardkoll.server.app import create_app
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow

from .broker import start_broker, wait_for_port
from .clinics import SimulatedClinics

CLINIC_NAMES = ("Vårdcentralen Norrby", "Vårdcentralen Åsen", "Hälsocentralen Älvdal", "Vårdcentralen Söderhöjd", "Vårdcentralen Björkö")
REGION = "Region Demo"


def run_demo(port: int = 8000, units: int = 4) -> None:
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="vardkoll-demo-"))
    broker = start_broker()
    token = secrets.token_urlsafe(24)
    settings = ServerSettings(
        database_url=f"sqlite:///{folder / 'vardkoll.db'}",
        mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
        share_group="vardkoll-ingest" if broker.mqtt_v5 else None,
        admin_token=token,
        dev=True,
    )
    services = build_services(settings, apply_migrations=True)
    clinics = SimulatedClinics(units, broker.port, broker.mqtt_v5)
    _register_units(services, clinics.units)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning"))
    server_thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    server_thread.start()
    wait_for_port(port, timeout_s=30)
    clinics.start()
    base = f"http://127.0.0.1:{port}"
    region = REGION.replace(" ", "%20")
    # Addresses and the token are printed unwrapped, so they can be copied whole.
    console.print(f"[bold]vardkoll demo[/] is running ({broker.kind} broker on port {broker.port}, SQLite in {folder})", soft_wrap=True)
    console.print(f"  dashboard:         {base}/logga-in (log in with the admin token)", soft_wrap=True)
    console.print(f"  API documentation: {base}/docs", soft_wrap=True)
    console.print(f"  admin token:       {token}", soft_wrap=True)
    console.print(f"  figures:           curl -H 'Authorization: Bearer {token}' '{base}/api/v1/compliance?metric=telephone&region={region}&from={clinics.first_day}'", soft_wrap=True)
    console.print("Press Ctrl-C to stop.")
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.wait(5):
        status = clinics.status()
        console.print(f"  events acknowledged {status['acknowledged']:,}, waiting {status['waiting']:,}, still to happen today {status['scheduled']:,}", highlight=False)
    console.print("stopping…")
    clinics.stop()
    server.should_exit = True
    server_thread.join(timeout=15)
    broker.stop()
    console.print("stopped.")


def _register_units(services, units: list[str]) -> None:
    with services.sessions.begin() as session:
        for index, unit in enumerate(units):
            if session.get(UnitRow, unit) is None:
                session.add(UnitRow(unit=unit, name=CLINIC_NAMES[index % len(CLINIC_NAMES)], region=REGION))
    services.units.invalidate()
