"""The edge agent: connectors → pseudonyms → durable outbox → MQTT publisher (docs/collector.md).

Imports nothing of the server stack (no FastAPI, SQLModel, SQLAlchemy); paho-mqtt is loaded only when a
real MQTT client is made.
"""

from .agent import Agent
from .config import CollectorConfig, ConfigError, load_config
from .outbox import Checkpoint, Outbox, OutboxStats
from .pseudonyms import Pseudonymiser, load_or_create_secret
from .publisher import Publisher

__all__ = [
    "Agent",
    "Checkpoint",
    "CollectorConfig",
    "ConfigError",
    "Outbox",
    "OutboxStats",
    "Publisher",
    "Pseudonymiser",
    "load_config",
    "load_or_create_secret",
]
