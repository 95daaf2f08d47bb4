"""Alerts that reach people: the rules that raise them, subscriptions, the delivery outbox and its channels
(e-mail, webhook), the morning digest "Dagens läge". The scheduled jobs (`server/jobs/`) run the checks
and the delivery under their lease; the API and the Larm page read and acknowledge (docs/alerts.md)."""

from .checks import CheckReport, run_checks
from .digest import hand_out_digests
from .outbox import DeliveryReport, deliver, hand_out
from .settings import AlertSettings
from .store import AlertRecord, recent_alerts

__all__ = ["AlertRecord", "AlertSettings", "CheckReport", "DeliveryReport", "deliver", "hand_out", "hand_out_digests", "recent_alerts", "run_checks"]
