"""Keep data only as long as it is needed (docs/privacy.md): raw events past `VARDKOLL_EVENT_RETENTION_DAYS`
(default 730: the 18-month continuity window and a margin), dead letters past
`VARDKOLL_DEAD_LETTER_RETENTION_DAYS` (90) and access records past `VARDKOLL_ACCESS_LOG_RETENTION_DAYS` (1095).

What stays: the metric state (calls, cases, visits, snapshots) that figures are computed from, and stored
figures of ended periods, so every figure the API answered keeps its value. What is lost with the raw
events: re-computing an old period with `vardkoll replay` from an export (the export only reaches back to
the retention limit). The self-audit needs the last 18 months and a day, which the lower bound of the
setting (570 days) keeps. A device's heartbeat is kept as its latest only (no history to trim)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..access_log import trim_access_log
from ..services import Services
from ..storage.stamp_keys import epoch_us
from ..storage.tables import DeadLetter, StoredEvent

BATCH_ROWS = 20_000  # one transaction per batch: deleting years at once would hold a long lock


def apply_retention(services: Services, now: datetime) -> dict[str, int]:
    settings = services.settings
    events_before_us = epoch_us(now - timedelta(days=settings.event_retention_days))
    deleted_events = 0
    while True:
        with services.sessions.begin() as session:
            oldest = session.scalars(select(StoredEvent.seq).where(StoredEvent.at_us < events_before_us).limit(BATCH_ROWS)).all()
            if oldest:
                session.execute(delete(StoredEvent).where(StoredEvent.seq.in_(oldest)))
        deleted_events += len(oldest)
        if len(oldest) < BATCH_ROWS:
            break
    with services.sessions.begin() as session:
        dead_letters = session.execute(delete(DeadLetter).where(DeadLetter.received_at < now - timedelta(days=settings.dead_letter_retention_days))).rowcount
        access = trim_access_log(session, now - timedelta(days=settings.access_log_retention_days))
    return {"events_deleted": deleted_events, "dead_letters_deleted": dead_letters, "access_records_deleted": access}
