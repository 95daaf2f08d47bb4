from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import free_port
from vardkoll.demo.broker import wait_for_port
from vardkoll.server.app import create_app
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.web import web_router

from .world import ADMIN_TOKEN, register


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where the screenshot test writes: docs/screenshots/ only when `./dev screenshots` asks
    (VARDKOLL_SCREENSHOTS), otherwise a temporary folder, so a test run leaves the tree as it was."""
    folder = Path(os.environ.get("VARDKOLL_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dashboard_app(settings: ServerSettings, services: Services, background: bool) -> FastAPI:
    """The app with the dashboard: `create_app` once it includes `web_router`, until then added here."""
    app = create_app(settings, services, background=background)
    if not any(getattr(route, "path", None) == "/logga-in" for route in app.routes):
        app.include_router(web_router)
    return app


@pytest.fixture
def web(tmp_path) -> Iterator[tuple[TestClient, Services]]:
    """The API and the dashboard on a SQLite file, driven in-process (no broker)."""
    settings = ServerSettings(database_url=f"sqlite:///{tmp_path / 'web.db'}", admin_token=ADMIN_TOKEN, dev=False)
    services = build_services(settings, apply_migrations=True)
    register(services)
    try:
        with TestClient(dashboard_app(settings, services, background=False)) as client:
            yield client, services
    finally:
        services.engine.dispose()


@pytest.fixture
def live_server(tmp_path, mosquitto) -> Iterator[tuple[str, Services]]:
    """The whole server (MQTT consumer, live hub, dashboard) over HTTP on a free port, with a real Mosquitto."""
    settings = ServerSettings(database_url=f"sqlite:///{tmp_path / 'live.db'}", mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, dev=True)
    services = build_services(settings, apply_migrations=True)
    register(services)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(dashboard_app(settings, services, background=True), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, 30)
    yield f"http://127.0.0.1:{port}", services
    server.should_exit = True
    thread.join(15)
    services.engine.dispose()
