"""Source events → wire events: pseudonyms for every reference, a stable event id, unit and device.

This is the only place where raw source ids meet the secret, for the connectors and the firmware bridge
alike; what leaves here holds pseudonyms only. The way back, for the clinic's staff, is written here too:
the lookup map (`collector/lookup.py`), which stays on the device. How the secret makes them is the pipeline's scheme
(`collector/pseudonyms.py`): `Pseudonymiser` for the agent's connectors, `FirmwareBridgePseudonymiser`
for the bridge's presses.

Calls and cases are keyed with the key of one reporting period (the key schedule, `collector/key_schedule.py`):
the `PeriodBook` says which period a call or case belongs to (that of its first event), and the scheme
keyed for that period makes its pseudonym. Patients, practitioners and event ids keep the secret's own key,
so an event read twice keeps its id and the server counts it once.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Callable

from .connectors.base import SourceEvent, joined_key
from .key_schedule import LEGACY, PeriodBook
from .lookup import LookupMap
from .pseudonyms import PseudonymScheme


class Pipeline:
    def __init__(self, scheme: PseudonymScheme, unit: str, device: str | None, lookup: LookupMap | None = None, periods: PeriodBook | None = None) -> None:
        self._scheme = scheme
        self.unit, self.device = unit, device
        self.lookup = lookup  # pseudonym -> source reference of cases and calls, kept on this device only
        self.periods = periods  # None: no key schedule, every pseudonym keyed with the secret itself

    def to_wire(self, connector: str, source: SourceEvent) -> dict[str, Any]:
        """The protocol event (SPEC 3.1); its id depends only on (connector, source key, type and, where the
        connector sets one, occurrence), so reading the same source twice gives the same ids and the event
        counts once, while two callback attempts are two events. Without a `device` (a bridge not run by a
        collector) the event has none."""
        source_key = joined_key(source.source_key, source.occurrence) if source.occurrence else source.source_key
        event: dict[str, Any] = {
            **copy.deepcopy(source.fields),
            "v": 1,
            "id": self._scheme.event_id(connector, source_key, source.type),
            "type": source.type,
            "unit": self.unit,
            **({"device": self.device} if self.device is not None else {}),
            "at": source.at.isoformat(timespec=source.at_timespec),
        }
        for field, (kind, raw) in source.refs.items():
            pseudonym = self._pseudonym(connector, kind, raw, source.at) if raw is not None else None
            _set_path(event, field, pseudonym)
            if self.lookup is not None and pseudonym is not None and raw is not None:
                self.lookup.remember(pseudonym, kind, connector, raw, source.at)
        return event

    def _pseudonym(self, connector: str, kind: str, raw: str, at: datetime) -> str:
        if self.periods is None or kind not in self._scheme.rotated_kinds:
            return self._scheme.pseudonym(kind, raw)
        period = self.periods.period_for(kind, raw, at, self._sent_before_the_schedule(connector, kind, raw))
        return (self._scheme if period == LEGACY else self._scheme.for_period(period)).pseudonym(kind, raw)

    def _sent_before_the_schedule(self, connector: str, kind: str, raw: str) -> Callable[[], bool] | None:
        """For an upgraded device's book: whether this thing went out under the secret's own key before the
        key schedule began (the lookup map remembers what was sent); None without a lookup map."""
        lookup = self.lookup
        if lookup is None:
            return None
        scheme = self._scheme
        return lambda: any(r.kind == kind and r.connector == connector for r in lookup.lookup(scheme.pseudonym(kind, raw)))

    def flush(self) -> None:
        """Write what the pipeline learnt (the periods it gave out, the lookup map's references) before the
        events go into the outbox, so a crash never leaves an event whose call or case the book forgot."""
        if self.periods is not None:
            self.periods.flush()
        if self.lookup is not None:
            self.lookup.flush()


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
