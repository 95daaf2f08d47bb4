"""What the API, the MQTT consumer and the jobs share within one server process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .device_config import ConfigPublisher, broker_publisher
from .figures import FigureService
from .ingest.service import IngestService
from .settings import ServerSettings
from .storage import make_engine, make_sessions, migrate
from .units import UnitDirectory


@dataclass
class Services:
    settings: ServerSettings
    engine: Engine
    sessions: sessionmaker[Session]
    units: UnitDirectory
    ingest: IngestService
    figures: FigureService
    config_publisher: ConfigPublisher  # remote config documents to the broker (a seam for tests)


def build_services(settings: ServerSettings, run_migrations: bool = True) -> Services:
    engine = make_engine(settings.database_url)
    if run_migrations:
        migrate(engine)
    sessions = make_sessions(engine)
    units = UnitDirectory(sessions)
    return Services(settings, engine, sessions, units, IngestService(sessions, units), FigureService(sessions, units),
                    broker_publisher(settings))
