"""Source events → wire events: pseudonyms for every reference, a stable event id, unit and device.

This is the only place where raw source ids meet the secret; what leaves here holds pseudonyms only.
"""

from __future__ import annotations

import copy

from typing import Any

from .connectors.base import SourceEvent
from .pseudonyms import Pseudonymiser


class Pipeline:
    def __init__(self, pseudonymiser: Pseudonymiser, unit: str, device: str) -> None:
        self._pseudonymiser = pseudonymiser
        self.unit, self.device = unit, device

    def to_wire(self, connector: str, source: SourceEvent) -> dict[str, Any]:
        """The protocol event (SPEC 3.1); its id depends only on (connector, source key, type and, where
        the connector sets one, occurrence), so reading the same source twice gives the same ids and the
        event counts once, while two callback attempts are two events."""
        key = f"{connector}\x1f{source.source_key}\x1f{source.type}"
        if source.occurrence:
            key += f"\x1f{source.occurrence}"
        event_id = "e" + self._pseudonymiser.pseudonym("event", key)
        event: dict[str, Any] = {
            **copy.deepcopy(source.fields),
            "v": 1,
            "id": event_id,
            "type": source.type,
            "unit": self.unit,
            "device": self.device,
            "at": source.at.isoformat(),
        }
        for field, (kind, raw) in source.refs.items():
            _set_path(event, field, self._pseudonymiser.pseudonym(kind, raw) if raw is not None else None)
        return event


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at a dotted path; numeric steps index lists ("doctors.2.doctor")."""
    *steps, last = path.split(".")
    target: Any = document
    for step in steps:
        target = target[int(step)] if isinstance(target, list) else target[step]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
