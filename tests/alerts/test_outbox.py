"""The delivery outbox on a real database with a real SMTP server and webhook receiver: once per recipient
and channel, also with two senders at once; a crash between send and mark repeats the send once with the
same idempotency key; failures back off; quiet hours hold; the digest is Swedish."""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from vardkoll.protocol.personal_number import contains_personal_number
from vardkoll.server.alerts.channels import send_email
from vardkoll.server.alerts.digest import digest_message, hand_out_digests
from vardkoll.server.alerts.messages import Message, PersonalDataInMessage, guard
from vardkoll.server.alerts.outbox import claim_next, deliver, hand_out
from vardkoll.server.alerts.settings import AlertSettings
from vardkoll.server.alerts.store import ASSESSMENT_AT_RISK, AlertRaised, raise_alerts
from vardkoll.server.alerts.subscriptions import SubscriptionIn, new_row
from vardkoll.server.services import Services
from vardkoll.server.storage.alert_tables import DeliveryRow

from jobs.jobs_support import UNIT, Clinic, local

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)  # 10:00 in Stockholm


def settings(smtp, **more) -> AlertSettings:
    env = smtp.env()
    return AlertSettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_username=env["VARDKOLL_SMTP_USERNAME"],
        smtp_password=env["VARDKOLL_SMTP_PASSWORD"],
        smtp_ca_file=str(smtp.cert),
        public_url="https://vk.test",
        delivery_retry_base_s=30,
        **more,
    )


def subscribe(services: Services, when: datetime = NOW - timedelta(days=1), **fields) -> None:
    data = SubscriptionIn(**{"name": "chef", "scope": "unit", "unit": UNIT, "channel": "email", "address": "chef@vc.test", **fields})
    with services.sessions.begin() as session:
        session.add(new_row(data, "test", None, when))


def raise_at_risk(services: Services, case: str = "case-a1") -> None:
    with services.sessions.begin() as session:
        raise_alerts(session, [AlertRaised(UNIT, ASSESSMENT_AT_RISK, case, {"contact_day": "2026-03-07", "deadline": "2026-03-10T22:59:59+00:00"})], NOW)


def statuses(services: Services) -> list[str]:
    with services.sessions() as session:
        return [row.status for row in session.scalars(select(DeliveryRow).order_by(DeliveryRow.id))]


def test_two_senders_at_once_send_each_message_once(services: Services, clinic: Clinic, smtp, webhook) -> None:
    subscribe(services)
    subscribe(services, address="second@vc.test")
    subscribe(services, channel="webhook", address=webhook.url, secret="s" * 20)
    for i in range(10):
        raise_at_risk(services, f"case-{i:02d}")
    alert_settings = settings(smtp)
    assert hand_out(services.sessions, alert_settings, NOW) == 30
    assert hand_out(services.sessions, alert_settings, NOW) == 0, "handing out again adds nothing"
    reports = []
    senders = [threading.Thread(target=lambda h=holder: reports.append(deliver(services.sessions, alert_settings, h, lambda: NOW))) for holder in ("a", "b")]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert sum(r.sent for r in reports) == 30 and statuses(services) == ["sent"] * 30
    assert len(smtp.mails) == 20 and len(webhook.posts) == 10
    assert len({mail.data.split(b"Message-ID: ")[1].split(b"\n")[0] for mail in smtp.mails}) == 20


def test_a_crash_between_send_and_mark_sends_once_more_with_the_same_message_id(services: Services, clinic: Clinic, smtp) -> None:
    subscribe(services)
    raise_at_risk(services)
    alert_settings = settings(smtp)
    hand_out(services.sessions, alert_settings, NOW)
    row = claim_next(services.sessions, "crashed", NOW, alert_settings.delivery_claim_s)
    assert row is not None
    from vardkoll.server.alerts.channels import idempotency_key

    send_email(alert_settings, Message.from_json(row.message), row.recipient, idempotency_key(row.message_key, row.recipient, row.channel))
    # ... and the process dies before marking it sent. Within the claim nobody else sends it:
    assert deliver(services.sessions, alert_settings, "next", lambda: NOW + timedelta(seconds=60)).sent == 0
    # After the claim expires it is sent once more, with the same Message-ID, and then never again.
    assert deliver(services.sessions, alert_settings, "next", lambda: NOW + timedelta(seconds=121)).sent == 1
    assert deliver(services.sessions, alert_settings, "next", lambda: NOW + timedelta(hours=1)).sent == 0
    ids = [email.message_from_bytes(mail.data)["Message-ID"] for mail in smtp.mails]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_failures_back_off_and_quiet_hours_hold(services: Services, clinic: Clinic, smtp) -> None:
    subscribe(services)
    subscribe(services, address="night@vc.test", quiet_from="07:00", quiet_to="12:00")  # 10:00 local is quiet
    raise_at_risk(services)
    alert_settings = settings(smtp, delivery_max_attempts=2)
    hand_out(services.sessions, alert_settings, NOW)
    smtp.refusing = True
    report = deliver(services.sessions, alert_settings, "a", lambda: NOW)
    assert (report.sent, report.retried) == (0, 1), "the quiet one is not even tried"
    assert deliver(services.sessions, alert_settings, "a", lambda: NOW + timedelta(seconds=29)).retried == 0, "backing off 30 s"
    assert deliver(services.sessions, alert_settings, "a", lambda: NOW + timedelta(seconds=31)).failed == 1, "the last attempt"
    smtp.refusing = False
    assert deliver(services.sessions, alert_settings, "a", lambda: NOW + timedelta(hours=1, minutes=59)).sent == 0, "held until 12:00 local (11:00 UTC)"
    assert deliver(services.sessions, alert_settings, "a", lambda: NOW + timedelta(hours=2)).sent == 1
    assert statuses(services) == ["failed", "sent"]
    assert [mail.recipients for mail in smtp.mails] == [["night@vc.test"]]


def test_a_subscription_hears_of_alerts_raised_after_it_was_made(services: Services, clinic: Clinic, smtp) -> None:
    subscribe(services, when=NOW + timedelta(seconds=1))
    raise_at_risk(services)
    assert hand_out(services.sessions, settings(smtp), NOW) == 0


def test_the_digest_is_swedish_and_goes_out_once_a_day(services: Services, clinic: Clinic, smtp) -> None:
    today = date(2026, 3, 10)
    clinic.ingest(
        clinic.offered("call-1", local(today - timedelta(days=1), 8)),
        clinic.answered("call-1", local(today - timedelta(days=1), 8, 1)),
        clinic.contact("case-due", local(today - timedelta(days=3), 9)),
    )
    subscribe(services, digest=True)
    alert_settings = settings(smtp)
    assert hand_out_digests(services, alert_settings, local(today, 6, 59)) == 0, "not before 07:00"
    assert hand_out_digests(services, alert_settings, local(today, 7, 0)) == 1
    assert hand_out_digests(services, alert_settings, local(today, 7, 1)) == 0, "once a day"
    deliver(services.sessions, alert_settings, "a", lambda: local(today, 7, 1))
    mail = email.message_from_bytes(smtp.mails[0].data, policy=email.policy.default)
    body = mail.get_body().get_content().replace("\r\n", "\n")
    assert str(mail["Subject"]) == "Vårdkoll: Dagens läge – Vårdcentralen 15SF"
    assert "Gårdagens siffror mot målet:" in body
    assert "- Telefoni, besvarade eller återringda samma dag: 100 % (1 av 1), mål 90 % – når målet" in body
    assert "- Medicinsk bedömning inom 3 dagar: inga data" in body
    assert "Ärenden som måste bedömas i dag: 1\n- case-due" in body
    assert "Insamlingsenheter som inte hörs: inga" in body
    assert not contains_personal_number(smtp.mails[0].data.decode()) and not contains_personal_number(body)


def test_the_guard_refuses_a_message_with_a_personal_number() -> None:
    import pytest

    for number in ("19121212-1212", "610973-2393"):
        with pytest.raises(PersonalDataInMessage):
            guard(Message("Larm", f"patient {number}", "https://vk.test"))
    with pytest.raises(PersonalDataInMessage):
        digest_message(UNIT, "VC", "2026-03-10", {}, ["19121212-1212"], [], "https://vk.test")
