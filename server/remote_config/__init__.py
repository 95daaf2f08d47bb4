"""Remote config on the server: push a version to a device (checked, published retained on the broker,
recorded), its history, and what the device says about it in its heartbeat. The API, the admin command
and Installationsvy all use these functions."""

from .publisher import BrokerUnavailable, ConfigPublisher, broker_publisher
from .reported import OUTCOMES, ReportedConfig, outcome_of, reported_config
from ..registry import UnknownDevice
from .history import (
    ConcurrentPush,
    ConfigRefused,
    PushedVersion,
    RetiredDevice,
    SameVersion,
    config_history,
    latest_versions,
    push_config,
)

__all__ = [
    "OUTCOMES",
    "BrokerUnavailable",
    "ConcurrentPush",
    "ConfigPublisher",
    "ConfigRefused",
    "PushedVersion",
    "ReportedConfig",
    "RetiredDevice",
    "SameVersion",
    "UnknownDevice",
    "broker_publisher",
    "config_history",
    "latest_versions",
    "outcome_of",
    "push_config",
    "reported_config",
]
