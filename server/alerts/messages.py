"""What a message says, in Swedish: a subject, a text, structured fields and a link.

Messages carry pseudonyms, device ids and links; never names, telephone numbers or personal identity
numbers (the events hold none, and `guard` refuses a message that would carry one anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson

from vardkoll.protocol.personal_number import contains_personal_number

from .store import (
    ASSESSMENT_AT_RISK,
    ASSESSMENT_OVERDUE,
    AUDIT_MISMATCH,
    COLLECTOR_SILENT,
    DEAD_LETTER_BURST,
    OUTBOX_GROWING,
    TELEPHONE_BELOW_TARGET,
    AlertRecord,
)

TITLES = {
    ASSESSMENT_AT_RISK: "Ärende nära 3-dagarsgränsen",
    ASSESSMENT_OVERDUE: "Ärende över 3-dagarsgränsen",
    TELEPHONE_BELOW_TARGET: "Telefonin under målet i dag",
    COLLECTOR_SILENT: "Insamlingsenheten hörs inte",
    OUTBOX_GROWING: "Kön på insamlingsenheten växer",
    AUDIT_MISMATCH: "Självkontrollen hittade en skillnad",
    DEAD_LETTER_BURST: "Många avvisade händelser",
}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    link: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return orjson.dumps({"subject": self.subject, "text": self.text, "link": self.link, "fields": self.fields}).decode()

    @staticmethod
    def from_json(raw: str) -> "Message":
        data = orjson.loads(raw)
        return Message(data["subject"], data["text"], data["link"], data["fields"])


class PersonalDataInMessage(ValueError):
    """A message would carry a personal identity number: it is never sent."""


def guard(message: Message) -> Message:
    if contains_personal_number(message.to_json()):
        raise PersonalDataInMessage("a personal identity number in the message")
    return message


def _local(moment: str | None, zone: ZoneInfo) -> str:
    if not moment:
        return "okänt"
    return datetime.fromisoformat(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)} %"


def alert_message(alert: AlertRecord, unit_name: str, public_url: str, zone: ZoneInfo) -> Message:
    base = public_url.rstrip("/")
    link = f"{base}/larm?enhet={quote(alert.unit)}"
    d = alert.detail
    if alert.kind in (ASSESSMENT_AT_RISK, ASSESSMENT_OVERDUE):
        when = "senast" if alert.kind == ASSESSMENT_AT_RISK else "passerade"
        body = (
            f"Ärende {alert.subject} (kontaktdag {d.get('contact_day')}) behöver medicinsk bedömning; 3-dagarsgränsen "
            f"{when} {_local(d.get('deadline'), zone)}.\n"
            f"Slå upp ärendet i ert eget system: på insamlingsenheten, kör `vardkoll collector lookup {alert.subject}`."
        )
    elif alert.kind == TELEPHONE_BELOW_TARGET:
        body = (
            f"Andelen samtal besvarade eller återringda samma dag är {_percent(d.get('share'))} i dag "
            f"({d.get('numerator')} av {d.get('denominator')}); målet är {_percent(d.get('target'))}. Kontroll kl {alert.subject[-5:]}."
        )
    elif alert.kind == COLLECTOR_SILENT:
        body = f"Insamlingsenheten {alert.subject} har inte hörts av sedan {_local(d.get('last_seen_at'), zone)}. Utan data visas inga siffror som uppfyllda."
    elif alert.kind == OUTBOX_GROWING:
        body = f"Insamlingsenheten {alert.subject} har {d.get('depth')} händelser som väntar på att skickas (gräns {d.get('threshold')})."
    elif alert.kind == AUDIT_MISMATCH:
        body = f"Den nattliga självkontrollen räknade om {alert.subject} och fick ett annat resultat än det lagrade."
    elif alert.kind == DEAD_LETTER_BURST:
        body = f"{d.get('dead_letters')} händelser avvisades under de senaste {d.get('window_minutes')} minuterna."
    else:
        body = f"Larm {alert.kind}: {alert.subject}."
    title = TITLES.get(alert.kind, alert.kind)
    return guard(
        Message(
            subject=f"Vårdkoll: {title} – {unit_name}",
            text=f"{title} – {unit_name} ({alert.unit})\n\n{body}\n\nLarmet: {link}",
            link=link,
            fields={"kind": alert.kind, "unit": alert.unit, "subject": alert.subject, "raised_at": alert.created_at.isoformat(), **d},
        )
    )
