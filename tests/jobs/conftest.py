"""Fixtures for the scheduled jobs: services on a real database (a SQLite file, then PostgreSQL, through
`database_url` of tests/support/plugin.py) and a clinic that ingests events."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings

from .jobs_support import Clinic


@pytest.fixture
def make_services(database_url: str) -> Iterator[Callable[[], Services]]:
    """Services on the test's database; call it again for another "server process" on the same database."""
    made: list[Services] = []

    def make() -> Services:
        services = build_services(ServerSettings(database_url=database_url, dev=True), apply_migrations=True)
        made.append(services)
        return services

    yield make
    for services in made:
        services.engine.dispose()


@pytest.fixture
def services(make_services: Callable[[], Services]) -> Services:
    return make_services()


@pytest.fixture
def clinic(services: Services) -> Clinic:
    return Clinic(services)
