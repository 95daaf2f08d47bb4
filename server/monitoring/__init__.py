"""What operators watch: Prometheus metrics, request ids and JSON logs, and the version.

Each server process keeps its own metrics and serves them at its own `/metrics`: scrape every process
slot (docs/operations.md, "Monitoring").
"""

from .logs import REQUEST_ID_HEADER, RequestIdMiddleware, configure_logging, log_config, request_id
from .metrics import REGISTRY, StateProbe, count_batch_acked, count_ingest, count_job_run, count_payload_refused, refusal_kind, time_commit
from .version import version

__all__ = [
    "REGISTRY",
    "REQUEST_ID_HEADER",
    "RequestIdMiddleware",
    "StateProbe",
    "configure_logging",
    "count_batch_acked",
    "count_ingest",
    "count_job_run",
    "count_payload_refused",
    "log_config",
    "refusal_kind",
    "request_id",
    "time_commit",
    "version",
]
