"""Services on a real database (SQLite, then PostgreSQL), a clinic that ingests events, real receivers."""

from __future__ import annotations

from typing import Iterator

import pytest

from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings

from jobs.jobs_support import Clinic, register_unit
from .receivers import SmtpReceiver, WebhookReceiver


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    services = build_services(ServerSettings(database_url=database_url, dev=True), apply_migrations=True)
    yield services
    services.engine.dispose()


@pytest.fixture
def clinic(services: Services) -> Clinic:
    register_unit(services, "SE2321000016-15SF")
    return Clinic(services)


@pytest.fixture
def smtp(tmp_path) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(tmp_path).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
