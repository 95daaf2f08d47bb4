"""The delivery outbox: each alert goes out once per channel and recipient, counted like ingest counts events.

1. `hand_out`: every alert not yet handed out (`alerts.notified_at` null) becomes one row per matching
   subscription in `alert_deliveries`, unique on (message_key, channel, recipient), and is marked handed
   out, in one transaction: a crash leaves either both or neither, and handing out again adds nothing.
2. `deliver`: a row is claimed (status `sending`, `claimed_by`, `claimed_until`) by a compare-and-set
   UPDATE committed before the send; only the process whose UPDATE changed the row sends it. On
   PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`, so two senders do not even wait on each
   other; on SQLite the single writer decides. The row is marked `sent` only after the channel took it.
   A failed send goes back to `pending` with a backoff; after the last attempt it is `failed`.
3. A crash between the send and the mark leaves the row `sending` until its claim expires; it is then
   sent once more with the same idempotency key (e-mail Message-ID, webhook `Idempotency-Key`). That is the
   one case of a repeat, and the receiver can recognise it (docs/alerts.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..storage.alert_tables import DeliveryRow, SubscriptionRow
from ..storage.job_tables import Alert
from ..storage.registry_tables import UnitRow
from ..storage.upsert import dialect_insert
from .channels import NotConfigured, SendFailed, idempotency_key, send_email, send_webhook
from .messages import Message, PersonalDataInMessage, alert_message
from .rules import AlertRules, all_effective_rules
from .settings import AlertSettings
from .store import ASSESSMENT_OVERDUE, AUDIT_MISMATCH, COLLECTOR_SILENT, record
from .subscriptions import covers, held_until

log = logging.getLogger("vardkoll.alerts")

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
HAND_OUT_BATCH = 500


def enabled(rules: AlertRules, kind: str) -> bool:
    """The jobs raise these kinds regardless; the unit's rules decide whether they are sent."""
    return {ASSESSMENT_OVERDUE: rules.overdue, COLLECTOR_SILENT: rules.collector_silent, AUDIT_MISMATCH: rules.audit_mismatch}.get(kind, True)


def alert_key(alert: Alert) -> str:
    return f"alert:{alert.id}:{int(alert.created_at.timestamp())}"


@dataclass(frozen=True)
class Outgoing:
    message_key: str
    subscription: SubscriptionRow
    unit: str | None
    message: Message


def enqueue(session: Session, outgoing: list[Outgoing], now: datetime) -> int:
    """Insert delivery rows (nothing for one already there); return how many are new."""
    if not outgoing:
        return 0
    table = DeliveryRow.__table__
    rows = [
        {
            "message_key": o.message_key,
            "channel": o.subscription.channel,
            "recipient": o.subscription.address,
            "subscription_id": o.subscription.id,
            "unit": o.unit,
            "message": o.message.to_json(),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": held_until(o.subscription, now),
            "created_at": now,
        }
        for o in sorted(outgoing, key=lambda o: (o.message_key, o.subscription.channel, o.subscription.address))
    ]
    stmt = dialect_insert(session, table).on_conflict_do_nothing(index_elements=["message_key", "channel", "recipient"]).returning(table.c.id)
    return sum(1 for _ in session.execute(stmt, rows))


def hand_out(sessions: sessionmaker[Session], settings: AlertSettings, now: datetime) -> int:
    """Turn alerts not yet handed out into delivery rows; return how many rows are new."""
    with sessions.begin() as session:
        alerts = session.scalars(select(Alert).where(Alert.notified_at.is_(None)).order_by(Alert.id).limit(HAND_OUT_BATCH)).all()
        if not alerts:
            return 0
        units = {row.unit: row for row in session.scalars(select(UnitRow).where(UnitRow.unit.in_({a.unit for a in alerts})))}
        rules = all_effective_rules(session, {a.unit: units[a.unit].region if a.unit in units else None for a in alerts})
        subscriptions = session.scalars(select(SubscriptionRow).order_by(SubscriptionRow.id)).all()
        outgoing = []
        for alert in alerts:
            unit_row = units.get(alert.unit)
            region = unit_row.region if unit_row else None
            if alert.cleared_at is not None or not enabled(rules[alert.unit], alert.kind):
                continue
            wanted = [s for s in subscriptions if s.created_at <= alert.created_at and covers(s, alert.unit, region, alert.kind)]
            if not wanted:
                continue
            zone = ZoneInfo(unit_row.time_zone if unit_row else "Europe/Stockholm")
            try:
                message = alert_message(record(alert), unit_row.name if unit_row else alert.unit, settings.public_url, zone)
            except PersonalDataInMessage:
                log.error("alert_not_sent alert=%s reason=personal_number_in_message", alert.id)
                continue
            outgoing.extend(Outgoing(alert_key(alert), s, alert.unit, message) for s in wanted)
        added = enqueue(session, outgoing, now)
        session.execute(update(Alert).where(Alert.id.in_([a.id for a in alerts])).values(notified_at=now))
    return added


# -- sending ---------------------------------------------------------------------------------------------

Sender = Callable[[DeliveryRow, Message, str], bytes]


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    sent_bytes: list[bytes] = field(default_factory=list)  # kept only when asked (tests)


def backoff(attempts: int, base_s: float = 30.0) -> timedelta:
    return timedelta(seconds=min(base_s * 2 ** max(0, attempts - 1), 3600))


def _due(now: datetime):  # type: ignore[no-untyped-def]  # an SQL expression
    table = DeliveryRow.__table__
    return or_(
        (table.c.status == PENDING) & (table.c.next_attempt_at <= now),
        (table.c.status == SENDING) & (table.c.claimed_until < now),
    )


def claim_next(sessions: sessionmaker[Session], holder: str, now: datetime, claim_s: float) -> DeliveryRow | None:
    """Claim one due row for `holder` and commit the claim; None when nothing is due."""
    table = DeliveryRow.__table__
    with sessions.begin() as session:
        query = select(table.c.id).where(_due(now)).order_by(table.c.next_attempt_at, table.c.id).limit(8)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for (candidate,) in session.execute(query).all():
            claimed = session.execute(
                update(table)
                .where(table.c.id == candidate, _due(now))
                .values(status=SENDING, claimed_by=holder, claimed_until=now + timedelta(seconds=claim_s), attempts=table.c.attempts + 1)
            )
            if claimed.rowcount == 1:
                row = session.get(DeliveryRow, candidate)
                assert row is not None
                session.expunge(row)
                return row
    return None


def _finish(sessions: sessionmaker[Session], row: DeliveryRow, holder: str, **values: object) -> bool:
    table = DeliveryRow.__table__
    with sessions.begin() as session:
        result = session.execute(
            update(table)
            .where(table.c.id == row.id, table.c.status == SENDING, table.c.claimed_by == holder)
            .values(claimed_by=None, claimed_until=None, **values)
        )
        return result.rowcount == 1


def deliver(
    sessions: sessionmaker[Session],
    settings: AlertSettings,
    holder: str,
    clock: Callable[[], datetime],
    limit: int = 200,
    keep_bytes: bool = False,
) -> DeliveryReport:
    """Send what is due, one claimed row at a time, at most `limit` rows."""
    report = DeliveryReport()
    for _ in range(limit):
        row = claim_next(sessions, holder, clock(), settings.delivery_claim_s)
        if row is None:
            break
        key = idempotency_key(row.message_key, row.recipient, row.channel)
        try:
            message = Message.from_json(row.message)
            if row.channel == "email":
                sent = send_email(settings, message, row.recipient, key)
            else:
                with sessions() as session:
                    subscription = session.get(SubscriptionRow, row.subscription_id)
                sent = send_webhook(settings, message, row.recipient, subscription.secret if subscription else None, key)
        except (SendFailed, PersonalDataInMessage) as exc:
            waiting = isinstance(exc, NotConfigured)
            final = not waiting and (isinstance(exc, PersonalDataInMessage) or row.attempts >= settings.delivery_max_attempts)
            # Without settings the row waits without using up its attempts.
            attempts = row.attempts - 1 if waiting else row.attempts
            _finish(
                sessions,
                row,
                holder,
                status=FAILED if final else PENDING,
                attempts=attempts,
                last_error=str(exc)[:300],
                next_attempt_at=clock() + backoff(row.attempts, settings.delivery_retry_base_s),
            )
            if final:
                report.failed += 1
                log.error("delivery_failed delivery=%s channel=%s reason=%s", row.id, row.channel, exc)
            else:
                report.retried += 1
                log.warning("delivery_retry delivery=%s channel=%s attempt=%s reason=%s", row.id, row.channel, row.attempts, exc)
            continue
        _finish(sessions, row, holder, status=SENT, sent_at=clock(), last_error=None)
        report.sent += 1
        if keep_bytes:
            report.sent_bytes.append(sent)
    return report
