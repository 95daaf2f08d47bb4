"""Connectors to clinic systems, registered by name in one explicit registry (no file scanning).

To add one: write `collector/connectors/<name>.py` with a `Connector` subclass and its `Config`, add it
to `REGISTRY` below, and document its sample config in docs/collector.md.

The registry names each connector's module and class, and imports a module only when its connector is
asked for: a collector loads the connectors its config names and no others (the FHIR connector alone
brings httpx, about 7 MB resident, which a Pi running a callback export does not need; SPEC 6).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from ..settings import SettingsError
from .base import Connector, ConnectorConfig, ConnectorContext, SourceBatch, SourceEvent


class _Registry(Mapping[str, type[Connector]]):
    """Connector type -> its class, imported from `module:Class` on first use."""

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries = entries

    def __getitem__(self, kind: str) -> type[Connector]:
        module, _, name = self._entries[kind].partition(":")
        cls: type[Connector] = getattr(importlib.import_module(module, __name__), name)
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


REGISTRY: Mapping[str, type[Connector]] = _Registry(
    {
        "asterisk_queue_log": ".asterisk_queue_log:AsteriskQueueLogConnector",
        "callback_csv": ".callback_csv:CallbackCsvConnector",
        "fhir_r4": ".fhir_r4:FhirR4Connector",
        "listing_export": ".listing_export:ListingExportConnector",
    }
)


class UnknownConnector(ValueError):
    pass


def build_connector(kind: str, settings: dict[str, Any], context: ConnectorContext) -> Connector:
    """The connector of type `kind`, with its settings validated by its own config model."""
    try:
        cls = REGISTRY[kind]
    except KeyError:
        raise UnknownConnector(f"unknown connector type {kind!r}; known: {', '.join(sorted(REGISTRY))}") from None
    try:
        config = cls.Config.parse(settings)
    except SettingsError as exc:
        raise ValueError(f"connector {context.name!r} ({kind}): {exc}") from None
    return cls(config, context)


__all__ = ["REGISTRY", "Connector", "ConnectorConfig", "ConnectorContext", "SourceBatch", "SourceEvent", "UnknownConnector", "build_connector"]
