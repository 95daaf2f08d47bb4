"""What the API, the MQTT consumer and the jobs share within one server process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.protocol.broker_url import parse_broker_url

from .remote_config import ConfigPublisher, broker_publisher
from .figures import FigureService
from .ingest.service import IngestService
from .provisioning.broker_accounts import BrokerAccounts
from .provisioning.dynsec import BrokerAddress
from .settings import ServerSettings
from .sign_in import IdentityProvider
from .storage import check_schema, make_engine, make_sessions, migrate
from .storage.database import read_sessions
from .registry import UnitDirectory

if TYPE_CHECKING:
    from .ingest.mqtt_consumer import MqttConsumer


@dataclass
class Services:
    settings: ServerSettings
    engine: Engine
    sessions: sessionmaker[Session]
    units: UnitDirectory
    ingest: IngestService
    figures: FigureService
    config_publisher: ConfigPublisher  # remote config documents to the broker (a seam for tests)
    broker_accounts: BrokerAccounts | None = None  # None: accounts are made by hand (VARDKOLL_BROKER_ACCOUNTS=manual)
    identity_provider: IdentityProvider | None = None  # None: no sign-in through the region's provider (VARDKOLL_OIDC_ISSUER unset)
    # Sessions for what reads, or writes one statement: on PostgreSQL without a transaction (no BEGIN, no ROLLBACK).
    reads: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.reads = read_sessions(self.sessions)


def build_services(settings: ServerSettings, apply_migrations: bool = False) -> Services:
    """The process's services. The schema must be current (`vardkoll migrate`, SchemaMismatch otherwise);
    `apply_migrations` is for the embedded demo, tests and benchmarks, which set up their own database."""
    engine = make_engine(settings.database_url)
    if apply_migrations:
        migrate(engine)
    else:
        check_schema(engine)
    sessions = make_sessions(engine)
    units = UnitDirectory(sessions)
    ingest = IngestService(sessions, units, timedelta(seconds=settings.max_clock_skew_s))
    provider = IdentityProvider(settings) if settings.sign_in_enabled else None
    return Services(settings, engine, sessions, units, ingest, FigureService(sessions, units), broker_publisher(settings), broker_accounts(settings), provider)


def build_consumer(services: Services, client_id: str | None = None, on_commit: Callable[[set[str]], None] | None = None) -> "MqttConsumer":
    """The MQTT consumer, given only what it uses (not the whole `Services`)."""
    from .ingest.device_registry import DeviceRegistry
    from .ingest.mqtt_consumer import MqttConsumer

    devices = DeviceRegistry(services.sessions, accept_unregistered=services.settings.dev)
    return MqttConsumer(services.settings, services.ingest, devices, client_id=client_id, on_commit=on_commit)


def broker_accounts(settings: ServerSettings) -> BrokerAccounts | None:
    if settings.broker_accounts != "dynsec":
        return None
    assert settings.broker_admin_username and settings.broker_admin_password  # checked by the settings
    url = parse_broker_url(settings.broker_admin_url or settings.mqtt_url)
    address = BrokerAddress(
        url.host, url.port, settings.broker_admin_username, settings.broker_admin_password.get_secret_value(), url.tls, settings.mqtt_ca_file
    )
    return BrokerAccounts(address, settings.topic_prefix, settings.broker_admin_timeout_s)
