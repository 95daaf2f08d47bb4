"""Connectors to clinic systems, registered by name in one explicit registry (no file scanning).

To add one: write `collector/connectors/<name>.py` with a `Connector` subclass and its `Config`, add it
to `REGISTRY` below, and document its sample config in docs/collector.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .base import Connector, ConnectorConfig, ConnectorContext, SourceBatch, SourceEvent
from .asterisk_queue_log import AsteriskQueueLogConnector
from .callback_csv import CallbackCsvConnector
from .fhir_r4 import FhirR4Connector
from .listing_export import ListingExportConnector

REGISTRY: dict[str, type[Connector]] = {
    "asterisk_queue_log": AsteriskQueueLogConnector,
    "callback_csv": CallbackCsvConnector,
    "fhir_r4": FhirR4Connector,
    "listing_export": ListingExportConnector,
}


class UnknownConnector(ValueError):
    pass


def build_connector(kind: str, settings: dict[str, Any], context: ConnectorContext) -> Connector:
    """The connector of type `kind`, with its settings validated by its own config model."""
    try:
        cls = REGISTRY[kind]
    except KeyError:
        raise UnknownConnector(f"unknown connector type {kind!r}; known: {', '.join(sorted(REGISTRY))}") from None
    try:
        config = cls.Config.model_validate(settings)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"connector {context.name!r} ({kind}): {problems}") from None
    return cls(config, context)


__all__ = ["REGISTRY", "Connector", "ConnectorConfig", "ConnectorContext", "SourceBatch", "SourceEvent", "UnknownConnector", "build_connector"]
