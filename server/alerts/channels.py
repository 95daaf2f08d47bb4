"""The channels: e-mail over SMTP (STARTTLS, credentials) and webhooks (JSON, HMAC-SHA256 signature).

Each send carries the delivery's idempotency key (the e-mail's Message-ID, the webhook's
`Idempotency-Key` header): a send repeated after a crash between sending and marking it sent carries the
same key, so the receiver can tell it is the same message (docs/alerts.md).

The webhook body is what Teams and Slack incoming webhooks accept: `text`, plus the structured fields under
`vardkoll` (which they ignore). The signature is `X-Vardkoll-Signature: sha256=<hex HMAC of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage

import orjson

from .messages import Message, guard
from .settings import AlertSettings


class SendFailed(Exception):
    """The channel did not take the message; the reason is short and safe to store (no message content)."""


class NotConfigured(SendFailed):
    """The channel has no settings yet (no SMTP host): the delivery waits."""


def idempotency_key(message_key: str, recipient: str, channel: str) -> str:
    return hashlib.sha256(f"{message_key}\x00{channel}\x00{recipient}".encode()).hexdigest()[:32]


def email_bytes(settings: AlertSettings, message: Message, recipient: str, key: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = recipient
    mail["Subject"] = message.subject
    mail["Message-ID"] = f"<{key}@vardkoll>"
    mail["X-Vardkoll-Delivery"] = key
    mail.set_content(message.text, charset="utf-8")
    return mail


def send_email(settings: AlertSettings, message: Message, recipient: str, key: str) -> bytes:
    """Send; return the bytes handed to the server (for the tests' personal-number scan)."""
    if not settings.smtp_host:
        raise NotConfigured("VARDKOLL_SMTP_HOST is not set")
    mail = email_bytes(settings, guard(message), recipient, key)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=settings.smtp_ca_file))
                smtp.ehlo()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            refused = smtp.send_message(mail)
    except smtplib.SMTPResponseException as exc:
        raise SendFailed(f"smtp {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SendFailed(f"smtp {type(exc).__name__}") from None
    if refused:
        raise SendFailed("smtp recipient refused")
    return mail.as_bytes()


def webhook_body(message: Message, key: str) -> bytes:
    return orjson.dumps(
        {
            "text": f"*{message.subject}*\n{message.text}",
            "vardkoll": {"subject": message.subject, "link": message.link, "fields": message.fields, "idempotency_key": key},
        }
    )


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(settings: AlertSettings, message: Message, url: str, secret: str | None, key: str) -> bytes:
    body = webhook_body(guard(message), key)
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key, "X-Vardkoll-Delivery": key, "User-Agent": "vardkoll-alerts"}
    if secret:
        headers["X-Vardkoll-Signature"] = signature(secret, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.webhook_timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise SendFailed(f"webhook http {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SendFailed(f"webhook {type(exc).__name__}") from None
    if not 200 <= status < 300:
        raise SendFailed(f"webhook http {status}")
    return body
