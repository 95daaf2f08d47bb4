"""Fixtures for tests that run against real services (loaded by `pytest_plugins` in tests/conftest.py).

    postgres_cluster        session   PostgresCluster: .host .port .url(db) .create_database() .drop_database(db)
    postgres_database_url   function  a fresh, empty database on that cluster, as a SQLAlchemy URL
    database_url            function  parametrized ["sqlite", "postgresql"]: the test runs on both backends
    mosquitto               function  a running Broker: .host .port .url .kill() .restart() .stop() .start() .log()
    mosquitto_factory       function  call it (optionally with extra config lines, or dynsec=(admin, password)) for one more Broker
    dynsec_broker           function  a running Broker with the dynamic security plugin: .dynsec_admin = (username, password)

Tests that use PostgreSQL carry the marker `postgresql`, those that use Mosquitto the marker `mosquitto`
(`pytest -m "not postgresql"` leaves them out). Without the service they are skipped, or fail on CI.
"""

from __future__ import annotations

import warnings
from typing import Iterator

import pytest

from . import mosquitto as mosquitto_support
from . import on_ci, postgres as postgres_support, service_missing

POSTGRES_FIXTURES = {"postgres_cluster", "postgres_database_url"}
MOSQUITTO_FIXTURES = {"mosquitto", "mosquitto_factory", "dynsec_broker"}
DYNSEC_ADMIN = ("vardkoll-admin", "test-admin-password-1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs against a real PostgreSQL (tests/support/postgres.py)")
    config.addinivalue_line("markers", "mosquitto: runs against a real Mosquitto broker (tests/support/mosquitto.py)")


def pytest_report_header(config: pytest.Config) -> list[str]:
    bindir = postgres_support.find_bindir()
    broker = mosquitto_support.find_binary()
    return [
        f"postgresql: {bindir or 'not installed'}; mosquitto: {broker or 'not installed'}"
        + ("; CI: missing services fail the tests" if on_ci() else "; missing services skip their tests")
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & POSTGRES_FIXTURES and not item.get_closest_marker("postgresql"):
            item.add_marker(pytest.mark.postgresql)
        if names & MOSQUITTO_FIXTURES:
            item.add_marker(pytest.mark.mosquitto)


# -- PostgreSQL ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[postgres_support.PostgresCluster]:
    """A throwaway PostgreSQL cluster on a free loopback port, for the whole session."""
    reason = postgres_support.missing_reason()
    if reason:
        service_missing(reason)
    try:
        cluster = postgres_support.start_cluster()
    except postgres_support.PostgresError as exc:
        pytest.fail(f"PostgreSQL is installed but the test cluster did not start:\n{exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_database_url(postgres_cluster: postgres_support.PostgresCluster) -> Iterator[str]:
    """A fresh, empty database (CREATE DATABASE t_<random>), dropped after the test."""
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    try:
        postgres_cluster.drop_database(name)
    except Exception as exc:  # noqa: BLE001 - the whole cluster is deleted after the session anyway
        warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database on each backend in turn: a SQLite file in tmp_path, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vardkoll.db'}"
    return request.getfixturevalue("postgres_database_url")


# -- Mosquitto -------------------------------------------------------------------------------------------


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mosquitto_support.BrokerFactory]:
    """`mosquitto_factory(extra_config=())` starts one more broker; all are stopped after the test."""
    reason = mosquitto_support.missing_reason()
    if reason:
        service_missing(reason)
    factory = mosquitto_support.BrokerFactory(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def mosquitto(mosquitto_factory: mosquitto_support.BrokerFactory) -> mosquitto_support.Broker:
    """A running Mosquitto 2 broker on a free loopback port (anonymous, unlimited queues, persistence on)."""
    return mosquitto_factory()


@pytest.fixture
def dynsec_broker(mosquitto_factory: mosquitto_support.BrokerFactory) -> mosquitto_support.Broker:
    """A running Mosquitto with the dynamic security plugin (anonymous refused; only the admin account)."""
    reason = mosquitto_support.dynsec_missing_reason()
    if reason:
        service_missing(reason)
    return mosquitto_factory(dynsec=DYNSEC_ADMIN)
