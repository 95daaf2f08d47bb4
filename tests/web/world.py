"""A small region for the dashboard tests: units, tokens, devices and a realistic day of events."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from html import unescape
from zoneinfo import ZoneInfo

import orjson

from vardkoll.server.auth import Role, issue_token
from vardkoll.server.services import Services
from vardkoll.server.storage.config_tables import DeviceConfigVersion
from vardkoll.server.storage.registry_tables import DeviceRow, UnitRow

ADMIN_TOKEN = "web-test-Admin-token-0123456789"  # strong enough for the server's check
STOCKHOLM = ZoneInfo("Europe/Stockholm")
VC01, VC02, VC03, OTHER = "SE2321000016-VC01", "SE2321000016-VC02", "SE2321000016-VC03", "SE2321000016-GA01"
UPPSALA, GAVLEBORG = "Region Uppsala", "Region Gävleborg"
PAST_DAY = date(2026, 3, 2)


def register(services: Services) -> None:
    with services.sessions.begin() as session:
        session.add(UnitRow(unit=VC01, name="Vårdcentralen Årsta", region=UPPSALA))
        session.add(UnitRow(unit=VC02, name="Vårdcentralen Östhammar", region=UPPSALA))
        session.add(UnitRow(unit=VC03, name="Hälsocentralen Älvkarleby", region=UPPSALA))
        session.add(UnitRow(unit=OTHER, name="Vårdcentralen Gävle", region=GAVLEBORG))
        now = datetime.now(timezone.utc)
        heartbeat = {
            "status": "online",
            "device": "pi-reception",
            "version": "1.4.2",
            "at": now.isoformat(),
            "clock": {"ntp_synced": True},
            "outbox": {"depth": 12, "oldest_at": (now - timedelta(minutes=3)).isoformat()},
            "config": {"version": "2026-11-20.1", "state": "applied"},
        }
        rolled_back = {
            "version": None,
            "state": "rolled_back",
            "rejected": {"version": "2026-11-20.1", "reason": "no connection to mqtts://mqtt2.vardkoll.example.se:8883 within 30 s"},
        }
        session.add(
            DeviceRow(
                unit=VC01,
                device="pi-reception",
                registered_at=now - timedelta(days=40),
                status="online",
                last_seen_at=now - timedelta(seconds=40),
                last_status=orjson.dumps(heartbeat).decode(),
            )
        )
        session.add(
            DeviceRow(
                unit=VC01,
                device="pi-telefoni",
                registered_at=now - timedelta(days=40),
                status="silent",
                last_seen_at=now - timedelta(minutes=47),
                last_status=orjson.dumps(
                    {**heartbeat, "version": "1.3.9", "clock": {"ntp_synced": False}, "outbox": {"depth": 318}, "config": rolled_back}
                ).decode(),
            )
        )
        for device in ("pi-reception", "pi-telefoni"):  # one remote config version pushed to both
            session.add(
                DeviceConfigVersion(
                    unit=VC01,
                    device=device,
                    seq=1,
                    version="2026-11-20.1",
                    sections='{"publisher": {"max_events_per_s": 100}}',
                    pushed_by="installatör Uppsala",
                    pushed_at=now - timedelta(days=3),
                )
            )
        session.add(
            DeviceRow(
                unit=VC01,
                device="pi-gammal",
                registered_at=now - timedelta(days=400),
                status="offline",
                last_seen_at=now - timedelta(days=3),
                retired_at=now - timedelta(days=2),
            )
        )


def token(services: Services, role: Role, region: str | None = None, unit: str | None = None) -> str:
    with services.sessions.begin() as session:
        _, secret = issue_token(session, f"webbtest {role.value}", role, region, unit)
    return secret


def day_of_events(unit: str, day: date, latest: datetime | None = None, calls: int = 40, seed: int = 0) -> list[dict]:
    """A clinic day: a morning call peak (answered, called back, waiting, abandoned, rejected), 3-day
    cases (assessed, open, at risk, overdue), a listing snapshot and doctor visits. Every event falls
    on `day` or before it, and not after `latest`."""
    start = datetime.combine(day, time(0, 1), STOCKHOLM)
    end = min(latest or datetime.combine(day, time(23, 59), STOCKHOLM), datetime.combine(day, time(23, 59), STOCKHOLM))
    span_s = max((end - start).total_seconds(), 60.0)
    events: list[dict] = []

    def at(fraction: float) -> str:
        return (start + timedelta(seconds=span_s * fraction)).isoformat()

    def add(kind: str, when: str, **fields) -> None:
        events.append({"v": 1, "id": f"{unit[-4:]}-{day.isoformat()}-{len(events)}-{seed}", "type": kind, "unit": unit, "at": when, **fields})

    for i in range(calls):
        call = f"call{seed}x{day:%m%d}x{i:03d}"
        offered = i / (calls + 5)
        add("call.offered", at(offered), call=call)
        kind = (i + seed) % 10
        if kind <= 5:
            add("call.answered", at(offered + 0.01), call=call)
        elif kind <= 7:
            add("call.callback_booked", at(offered + 0.01), call=call)
            add("call.callback_done", at(offered + 0.05), call=call)
        elif kind == 8:
            add("call.callback_booked", at(offered + 0.01), call=call)
        else:
            add("call.abandoned", at(offered + 0.01), call=call)
    for i in range(3 + seed % 3):
        add("call.rejected", at(0.2 + i / 50), call=f"rej{seed}x{day:%m%d}x{i:02d}", reason="queue_full")
    for i in range(14):
        case = f"case{seed}x{day:%m%d}x{i:02d}"
        contact_day = day - timedelta(days=i % 5)
        contact = datetime.combine(contact_day, time(9, 0), STOCKHOLM).isoformat() if contact_day < day else at(0.1)
        add("care.contact", contact, case=case, listed=True, channel="phone")
        if i < 9:
            add("care.assessed", at(0.3 + i / 40), case=case, profession="nurse" if i % 2 else "doctor", form="physical")
    add("listing.snapshot", at(0.05), listed=11840, named_doctor=6390 + 400 * seed)
    for i in range(30):
        fixed = f"doc{i % 4:04d}x"
        add(
            "visit.completed",
            at(0.4 + i / 100),
            patient=f"pat{seed}x{day:%m%d}x{i:03d}",
            practitioner=fixed if i % 3 else "doc9999x",
            profession="doctor",
            listed=True,
            fixed_doctor=fixed,
        )
    return events


FIELD = re.compile(r'data-field="(?P<name>\w+)">(?P<value>[^<]*)<')


def page_fields(html: str, section_id: str) -> dict[str, str]:
    """The `data-field` values inside the element with id `section_id` (to its closing </section>)."""
    start = html.index(f'id="{section_id}"')
    end = html.index("</section>", start)
    return {m["name"]: unescape(m["value"]).strip() for m in FIELD.finditer(html[start:end])}
