"""Silent-collector detection: a device not heard from for the threshold is "silent" with one alert per
silence; heard from again, it is online and the alert cleared; silent again, alerted again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from vardkoll.server.jobs import COLLECTOR_SILENT, JobOutcome, JobRunner, JobSettings, recent_alerts
from vardkoll.server.jobs.silent_collectors import detect_silent_collectors
from vardkoll.server.services import Services
from vardkoll.server.storage.registry_tables import DeviceRow

from .jobs_support import UNIT, FakeClock

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
FIFTEEN_MINUTES = timedelta(minutes=15)
LONG_AGO = NOW - timedelta(days=30)


def add_devices(services: Services) -> None:
    with services.sessions.begin() as session:
        session.add_all(
            [
                DeviceRow(unit=UNIT, device="pi-quiet", registered_at=LONG_AGO, status="online", last_seen_at=NOW - timedelta(minutes=20)),
                DeviceRow(unit=UNIT, device="pi-talking", registered_at=LONG_AGO, status="online", last_seen_at=NOW - timedelta(minutes=5)),
                DeviceRow(unit=UNIT, device="pi-went-offline", registered_at=LONG_AGO, status="offline", last_seen_at=NOW - timedelta(minutes=16)),
                DeviceRow(unit=UNIT, device="pi-retired", registered_at=LONG_AGO, retired_at=NOW - timedelta(days=2), last_seen_at=LONG_AGO),
                DeviceRow(unit=UNIT, device="pi-never-connected", registered_at=NOW - timedelta(hours=1)),
                DeviceRow(unit=UNIT, device="pi-just-registered", registered_at=NOW - timedelta(minutes=5)),
            ]
        )


def statuses(services: Services) -> dict[str, str | None]:
    with services.sessions() as session:
        return {row.device: row.status for row in session.query(DeviceRow)}


def open_silence_alerts(services: Services) -> set[str]:
    return {a.subject for a in recent_alerts(services.sessions, UNIT, LONG_AGO, kind=COLLECTOR_SILENT) if a.cleared_at is None}


def seen(services: Services, device: str, at: datetime) -> None:
    with services.sessions.begin() as session:
        session.execute(update(DeviceRow).where(DeviceRow.device == device).values(last_seen_at=at))


def test_devices_not_heard_from_for_the_threshold_are_silent_with_one_alert(services: Services) -> None:
    add_devices(services)
    report = detect_silent_collectors(services.sessions, NOW, FIFTEEN_MINUTES)
    assert (report.fell_silent, report.silent) == (3, 3)
    assert statuses(services) == {
        "pi-quiet": "silent",
        "pi-talking": "online",
        "pi-went-offline": "silent",
        "pi-retired": None,
        "pi-never-connected": "silent",
        "pi-just-registered": None,
    }
    assert open_silence_alerts(services) == {"pi-quiet", "pi-went-offline", "pi-never-connected"}
    detail = {a.subject: a.detail for a in recent_alerts(services.sessions, UNIT, LONG_AGO)}["pi-quiet"]
    assert detail == {"last_seen_at": (NOW - timedelta(minutes=20)).isoformat(), "silent_after_s": 900}

    again = detect_silent_collectors(services.sessions, NOW + timedelta(minutes=1), FIFTEEN_MINUTES)
    assert (again.fell_silent, again.silent) == (0, 3), "still silent: no second alert"
    assert len(recent_alerts(services.sessions, UNIT, LONG_AGO)) == 3


def test_a_device_heard_from_again_is_online_and_its_alert_cleared_and_a_new_silence_alerts_again(services: Services) -> None:
    add_devices(services)
    detect_silent_collectors(services.sessions, NOW, FIFTEEN_MINUTES)
    seen(services, "pi-quiet", NOW + timedelta(minutes=1))
    report = detect_silent_collectors(services.sessions, NOW + timedelta(minutes=2), FIFTEEN_MINUTES)
    assert (report.fell_silent, report.heard_again) == (0, 1)
    assert statuses(services)["pi-quiet"] == "online"
    assert open_silence_alerts(services) == {"pi-went-offline", "pi-never-connected"}

    later = NOW + timedelta(minutes=17)
    report = detect_silent_collectors(services.sessions, later, FIFTEEN_MINUTES)
    assert report.fell_silent == 3, "pi-quiet again, and now pi-talking and pi-just-registered"
    assert open_silence_alerts(services) == {"pi-quiet", "pi-talking", "pi-went-offline", "pi-never-connected", "pi-just-registered"}
    raised_again = [a for a in recent_alerts(services.sessions, UNIT, later) if a.subject == "pi-quiet"]
    assert len(raised_again) == 1 and raised_again[0].created_at == later


def test_retiring_a_silent_device_clears_its_alert(services: Services) -> None:
    add_devices(services)
    detect_silent_collectors(services.sessions, NOW, FIFTEEN_MINUTES)
    with services.sessions.begin() as session:
        session.execute(update(DeviceRow).where(DeviceRow.device == "pi-quiet").values(retired_at=NOW))
    report = detect_silent_collectors(services.sessions, NOW + timedelta(minutes=1), FIFTEEN_MINUTES)
    assert report.heard_again == 1
    assert open_silence_alerts(services) == {"pi-went-offline", "pi-never-connected"}


def test_the_threshold_is_a_setting_of_the_job(services: Services) -> None:
    add_devices(services)
    runner = JobRunner(services, JobSettings(silent_after_s=4 * 60), clock=FakeClock(NOW))
    assert runner.keep_lease()
    assert runner.run("silent_collectors") is JobOutcome.DONE
    assert open_silence_alerts(services) == {"pi-quiet", "pi-talking", "pi-went-offline", "pi-never-connected", "pi-just-registered"}
