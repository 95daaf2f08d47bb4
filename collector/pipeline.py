"""Source events → wire events: pseudonyms for every reference, a stable event id, unit and device.

This is the only place where raw source ids meet the secret; what leaves here holds pseudonyms only.
"""

from __future__ import annotations

from typing import Any

from .connectors.base import SourceEvent
from .pseudonyms import Pseudonymiser


class Pipeline:
    def __init__(self, pseudonymiser: Pseudonymiser, unit: str, device: str) -> None:
        self._pseudonymiser = pseudonymiser
        self.unit, self.device = unit, device

    def to_wire(self, connector: str, source: SourceEvent) -> dict[str, Any]:
        """The protocol event (SPEC 3.1); its id depends only on (connector, source key, type), so reading
        the same source twice gives the same ids and the event counts once."""
        event_id = "e" + self._pseudonymiser.pseudonym("event", f"{connector}\x1f{source.source_key}\x1f{source.type}")
        event: dict[str, Any] = {
            **source.fields,
            "v": 1,
            "id": event_id,
            "type": source.type,
            "unit": self.unit,
            "device": self.device,
            "at": source.at.isoformat(),
        }
        for field, (kind, raw) in source.refs.items():
            event[field] = self._pseudonymiser.pseudonym(kind, raw) if raw is not None else None
        return event
