"""The morning digest "Dagens läge", per unit, at the unit's `digest_at` local time: yesterday's figures
against target, the cases whose 3-day deadline is today, and the devices not heard from. In Swedish.

It goes through the same outbox as the alerts, under the key `digest:<unit>:<local day>`, so it is sent
once per day and recipient however often the job runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vardkoll.server.metrics.assessment import LIMIT_DAYS
from vardkoll.server.metrics.calendar import Period

from ..figures.loading import load_cases
from ..services import Services
from ..storage.alert_tables import DeliveryRow, SubscriptionRow
from ..storage.registry_tables import DeviceRow, UnitRow
from .messages import Message, guard
from .outbox import Outgoing, enqueue
from .rules import all_effective_rules
from .settings import AlertSettings
from .subscriptions import digest_covers

METRIC_LINES = {"telephone": "Telefoni, besvarade eller återringda samma dag", "assessment": "Medicinsk bedömning inom 3 dagar"}
MAX_CASES_LISTED = 30


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)} %"


def digest_message(
    unit: str, unit_name: str, day: str, figures: dict[str, dict[str, Any]], due_today: list[str], silent: list[str], public_url: str
) -> Message:
    link = f"{public_url.rstrip('/')}/enhet/{unit}"
    lines = [f"Dagens läge – {unit_name} ({unit}), {day}", "", "Gårdagens siffror mot målet:"]
    for metric, label in METRIC_LINES.items():
        figure = figures.get(metric)
        if figure is None or figure["share"] is None:
            lines.append(f"- {label}: inga data")
            continue
        verdict = "når målet" if figure["meets_target"] else ("under målet" if figure["meets_target"] is False else "inget mål")
        lines.append(f"- {label}: {_percent(figure['share'])} ({figure['numerator']} av {figure['denominator']}), mål {_percent(figure['target'])} – {verdict}")
    lines += ["", f"Ärenden som måste bedömas i dag: {len(due_today)}"]
    lines += [f"- {case}" for case in due_today[:MAX_CASES_LISTED]]
    if len(due_today) > MAX_CASES_LISTED:
        lines.append(f"- … och {len(due_today) - MAX_CASES_LISTED} till (se länken)")
    if due_today:
        lines.append("Slå upp ett ärende i ert eget system: på insamlingsenheten, kör `vardkoll collector lookup PSEUDONYM`.")
    lines += ["", "Insamlingsenheter som inte hörs: " + (", ".join(silent) if silent else "inga"), "", f"Klinikvyn: {link}"]
    return guard(
        Message(
            subject=f"Vårdkoll: Dagens läge – {unit_name}",
            text="\n".join(lines),
            link=link,
            fields={
                "kind": "digest",
                "unit": unit,
                "day": day,
                "due_today": len(due_today),
                "silent_devices": silent,
                **{f"{m}_share": (figures[m]["share"] if m in figures else None) for m in METRIC_LINES},
            },
        )
    )


def build_digest(services: Services, unit: str, unit_name: str, now: datetime, public_url: str) -> Message:
    config = services.units.config(unit)
    today = now.astimezone(config.tz).date()
    yesterday = today - timedelta(days=1)
    figures = {metric: services.figures.figure(unit, metric, Period(yesterday, yesterday), as_of=now) for metric in METRIC_LINES}
    contact_day = today - timedelta(days=LIMIT_DAYS)
    with services.sessions() as session:
        ledger = load_cases(session, unit, Period(contact_day, contact_day), None, config)
        due = sorted(case.case for case in ledger.open_cases(now, config) if case.deadline.astimezone(config.tz).date() == today)
        silent = sorted(session.scalars(select(DeviceRow.device).where(DeviceRow.unit == unit, DeviceRow.retired_at.is_(None), DeviceRow.status == "silent")))
    return digest_message(unit, unit_name, today.isoformat(), figures, due, silent, public_url)


def _already_out(session: Session, key: str) -> bool:
    return session.scalar(select(DeliveryRow.id).where(DeliveryRow.message_key == key).limit(1)) is not None


def hand_out_digests(services: Services, settings: AlertSettings, now: datetime) -> int:
    """Queue today's digest of every unit whose digest time has come and that someone subscribed to."""
    with services.sessions() as session:
        subscriptions = [s for s in session.scalars(select(SubscriptionRow).where(SubscriptionRow.digest.is_(True)))]
        if not subscriptions:
            return 0
        units = {row.unit: row for row in session.scalars(select(UnitRow))}
        rules = all_effective_rules(session, {unit: row.region for unit, row in units.items()})
    added = 0
    for unit, row in sorted(units.items()):
        wanted = [s for s in subscriptions if digest_covers(s, unit, row.region)]
        digest_at = rules[unit].digest_at
        if not wanted or digest_at is None:
            continue
        local = now.astimezone(services.units.config(unit).tz)
        if local.time().replace(tzinfo=None) < digest_at:
            continue
        key = f"digest:{unit}:{local.date().isoformat()}"
        with services.sessions() as session:
            if _already_out(session, key):
                continue
        message = build_digest(services, unit, row.name, now, settings.public_url)
        with services.sessions.begin() as session:
            added += enqueue(session, [Outgoing(key, s, unit, message) for s in wanted], now)
    return added
