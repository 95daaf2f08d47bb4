"""An at-risk case, published over real Mosquitto to two real server processes, reaches each subscriber
exactly once per channel (a real SMTP server with STARTTLS and a login, a real webhook receiver), also when
the process sending it is killed with SIGKILL while the receivers are refusing; no byte sent holds a
personal identity number."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from support import free_port
from support.memory_collector import DemoCollector
from vardkoll.protocol.personal_number import contains_personal_number
from vardkoll.server.alerts.store import ASSESSMENT_AT_RISK
from vardkoll.server.services import build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.alert_tables import DeliveryRow
from vardkoll.server.storage.job_tables import Alert
from vardkoll.server.storage.registry_tables import Lease

from .receivers import SmtpReceiver, WebhookReceiver

UNIT = "SE2321000016-VC01"
ADMIN = "admin-token-for-the-alert-test-0123456789"
SECRET = "webhook-secret-0123456789"


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
    return subprocess.Popen([exe, "server", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_an_at_risk_case_reaches_each_subscriber_once_across_kill_minus_nine_and_two_processes(database_url, mosquitto, tmp_path):
    smtp, hook = SmtpReceiver(tmp_path).start(), WebhookReceiver().start()
    smtp.refusing = hook.refusing = True
    exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
    env = {
        **os.environ,
        "VARDKOLL_DATABASE_URL": database_url,
        "VARDKOLL_MQTT_URL": mosquitto.url,
        "VARDKOLL_DEV": "1",
        "VARDKOLL_ADMIN_TOKEN": ADMIN,
        "VARDKOLL_PUBLIC_URL": "https://vardkoll.region.test",
        **smtp.env(),
        "VARDKOLL_JOBS_LEASE_TTL_S": "3",
        "VARDKOLL_JOBS_ALERT_CHECKS_EVERY_S": "1",
        "VARDKOLL_JOBS_ALERT_DELIVERY_EVERY_S": "1",
        "VARDKOLL_DELIVERY_CLAIM_S": "10",
        "VARDKOLL_DELIVERY_RETRY_BASE_S": "1",
    }
    subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
    ports = [free_port(), free_port()]
    servers = {port: start_server(env, port) for port in ports}
    collector = DemoCollector(UNIT, "dev-vc01", mosquitto.port, True, resend_after_s=2)
    services = build_services(ServerSettings(database_url=database_url, dev=True))
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}/api/v1", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
        assert wait_for(lambda: _up(api), 30), "the server did not start"
        api.post("/units", json={"unit": UNIT, "name": "Vårdcentralen Norrby", "region": "Region Demo"}).raise_for_status()
        for body in (
            {"name": "Verksamhetschef Norrby", "scope": "unit", "unit": UNIT, "channel": "email", "address": "chef@norrby.test"},
            {"name": "Norrbys kanal", "scope": "unit", "unit": UNIT, "channel": "webhook", "address": hook.url, "secret": SECRET},
            {"name": "Uppföljning", "scope": "region", "region": "Region Demo", "channel": "email", "address": "analys@region.test"},
            {"name": "Installatörer", "scope": "devices", "channel": "email", "address": "install@region.test"},  # device alerts only
        ):
            api.post("/alert-subscriptions", json=body).raise_for_status()

        # A case contacted three days ago (local): its deadline is the end of today, within 24 hours.
        contact = (datetime.now(ZoneInfo("Europe/Stockholm")) - timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
        collector.start()
        collector.send(
            [
                {
                    "v": 1,
                    "id": "01KJPNWMSGFA4TEXYJ59G44MF4",
                    "type": "care.contact",
                    "unit": UNIT,
                    "at": contact.isoformat(),
                    "case": "case-2b8e41",
                    "listed": True,
                    "channel": "phone",
                    "patient": "pat-5d0c7a",
                }
            ]
        )
        assert wait_for(lambda: _attempted(services, 3), 60), "the deliveries were never tried"

        # Kill the process that holds the job lease (and sends) while the receivers refuse, then let them take.
        holder = _holder_pid(services)
        victim = next(port for port, proc in servers.items() if proc.pid == holder)
        servers[victim].send_signal(signal.SIGKILL)
        servers[victim].wait(10)
        smtp.refusing = hook.refusing = False
        assert wait_for(lambda: _all_sent(services, 3), 90), "the other process never sent them"
        time.sleep(3)  # anything sent twice would arrive by now
    finally:
        collector.stop()
        for proc in servers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
        smtp.stop()
        hook.stop()

    with services.sessions() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == ASSESSMENT_AT_RISK)).all()
    assert [(a.unit, a.subject) for a in alerts] == [(UNIT, "case-2b8e41")]
    assert sorted(r for mail in smtp.mails for r in mail.recipients) == ["analys@region.test", "chef@norrby.test"]
    assert all(mail.tls for mail in smtp.mails), "STARTTLS was used"
    assert len(hook.posts) == 1 and hook.posts[0].signed_with(SECRET)
    texts = []
    for mail in smtp.mails:
        parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
        body = parsed.get_body().get_content()
        assert "case-2b8e41" in body and "3-dagarsgränsen" in body and "vardkoll collector lookup case-2b8e41" in body
        assert "pat-5d0c7a" not in body, "the patient's pseudonym is not needed and not sent"
        texts += [mail.data.decode("utf-8", "replace"), body, str(parsed["Subject"])]
    texts += [post.body.decode() for post in hook.posts]
    assert not any(contains_personal_number(text) for text in texts)


def _up(api: httpx.Client) -> bool:
    try:
        return api.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _attempted(services, n: int) -> bool:
    with services.sessions() as session:
        rows = session.scalars(select(DeliveryRow)).all()
        return len(rows) == n and all(row.attempts >= 1 for row in rows)


def _all_sent(services, n: int) -> bool:
    with services.sessions() as session:
        rows = session.scalars(select(DeliveryRow)).all()
        return len(rows) == n and all(row.status == "sent" for row in rows)


def _holder_pid(services) -> int:
    with services.sessions() as session:
        lease = session.scalars(select(Lease)).one()
        return int(lease.holder.split(":")[1])
