"""The metric rules of SPEC section 2 as pure code over events: no database, no MQTT, time passed in.

The replay CLI, the live service and the tests all run this same code.
"""

from .calendar import Period, end_of_day
from .config import DEFAULT_TARGETS, DEFINITION_VERSIONS, METRICS, MetricName, UnitConfig
from .engine import MetricEngine
from .unit_state import Applied, UnitState

__all__ = [
    "DEFAULT_TARGETS",
    "DEFINITION_VERSIONS",
    "METRICS",
    "MetricName",
    "Applied",
    "MetricEngine",
    "Period",
    "UnitConfig",
    "UnitState",
    "end_of_day",
]
