"""Small event builders for collector tests (obviously fake pseudonyms; no personal data)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

UNIT = "SE2321000016-15SF"
DEVICE = "pi-test-01"
START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=1)))


def offered(n: int, unit: str = UNIT, **extra: Any) -> dict[str, Any]:
    at = START + timedelta(seconds=n)
    return {"v": 1, "id": f"ev-{n:07d}", "type": "call.offered", "unit": unit, "at": at.isoformat(), "call": f"callx{n:07d}", **extra}


def offered_many(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [offered(n) for n in range(first, first + count)]
