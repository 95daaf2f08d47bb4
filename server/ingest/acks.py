"""The committed acknowledgement a device receives on `{prefix}/{unit}/{device}/ack` (SPEC 3.3).

    {"v": 1, "committed": ["id", ...], "rejected": [{"id": "id" | null, "reason": "..."}],
     "batch_refused": null | "reason"}

`committed` events are stored (now or before): delete them from the outbox. `rejected` events will never
be accepted: delete them too and count them. `batch_refused` means the payload could not be read at all.
Until an acknowledgement arrives, nothing may be deleted: PUBACK only says the broker has the message.
"""

from __future__ import annotations

import orjson

from .service import IngestReport


def ack_payload(report: IngestReport) -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "committed": report.committed,
            "rejected": [{"id": event_id, "reason": reason} for event_id, reason in report.rejected],
            "batch_refused": None,
        }
    )


def refusal_payload(reason: str) -> bytes:
    return orjson.dumps({"v": 1, "committed": [], "rejected": [], "batch_refused": reason})
