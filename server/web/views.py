"""What each page shows, gathered from the figure service and the registry; no HTML here.

The numbers are the API's: every figure comes from `FigureService.figures` with the same unit, metric
and period the API would be asked for, so a page and `GET /api/v1/...compliance` never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.metrics.assessment import OpenCase
from vardkoll.server.metrics.call_hours import CallHour, calls_by_hour
from vardkoll.server.metrics.calendar import end_of_day
from vardkoll.server.metrics.definitions import DEFINITIONS

from ..remote_config import PushedVersion, ReportedConfig, latest_versions, outcome_of, reported_config
from ..figures.day_parts import open_case_ledgers
from ..figures.loading import load_calls
from ..services import Services
from ..storage.registry_tables import DeviceRow, UnitRow

METRIC_NAMES = {m: DEFINITIONS[m].name for m in METRICS}  # the names the help pages explain
SHORT_NAMES = {"telephone": "Telefon", "assessment": "Bedömning 3 dagar", "fixed_doctor": "Fast läkare", "continuity": "Kontinuitet"}
AT_RISK_WITHIN = timedelta(hours=24)
MAX_LISTED_CASES = 50


def month_to_date(day: date) -> Period:
    return Period(day.replace(day=1), day)


def today_in(services: Services, unit: str, now: datetime) -> date:
    return now.astimezone(services.units.config(unit).tz).date()


@dataclass
class OpenCases:
    at_risk: list[OpenCase] = field(default_factory=list)  # deadline within 24 hours of `as_of`
    overdue: list[OpenCase] = field(default_factory=list)
    pending: int = 0


def open_cases(services: Services, session: Session, unit: str, day: date, as_of: datetime) -> OpenCases:
    """The in-scope cases still open at `as_of`, by pseudonym: the same set the assessment figure counts
    as `pending` and `overdue_open` (`CaseLedger.open_cases` decides), sorted by deadline."""
    config = services.units.config(unit, day)
    ledger = open_case_ledgers(session, [unit], as_of, {unit: config})[unit]
    result = OpenCases()
    for case in ledger.open_cases(as_of, config):
        if case.overdue_at(as_of):
            result.overdue.append(case)
        else:
            result.pending += 1
            if case.deadline - as_of <= AT_RISK_WITHIN:
                result.at_risk.append(case)
    result.at_risk.sort(key=lambda c: (c.deadline, c.case))
    result.overdue.sort(key=lambda c: (c.deadline, c.case))
    return result


@dataclass
class ClinicView:
    unit: UnitRow
    day: date
    is_today: bool
    as_of: datetime
    today: dict[str, dict[str, Any]]  # telephone, assessment for the day
    month: dict[str, dict[str, Any]]  # every metric, month to date
    cases: OpenCases
    tz: str
    hours: list[CallHour]  # the day's telephone figure by local hour
    day_end: datetime | None = None  # the last instant of a past day shown (None: today)


def clinic_view(services: Services, session: Session, unit: UnitRow, day: date | None, now: datetime) -> ClinicView:
    today = today_in(services, unit.unit, now)
    day = day or today
    config = services.units.config(unit.unit, day)
    day_period, month = Period(day, day), month_to_date(day)
    figures_today = {m: services.figures.figure(unit.unit, m, day_period) for m in ("telephone", "assessment")}
    figures_month = {m: services.figures.figure(unit.unit, m, month) for m in METRICS}
    as_of = min(now, end_of_day(day, config.tz))
    # Counted as the day figure counts (as of the end of the day, the API's default), so the hours add
    # up to it; only the hours not begun yet are told apart by `now`.
    hours = calls_by_hour(load_calls(session, unit.unit, day_period, config), day, end_of_day(day, config.tz), config, now=as_of)
    return ClinicView(
        unit,
        day,
        day == today,
        as_of,
        figures_today,
        figures_month,
        open_cases(services, session, unit.unit, day, as_of),
        unit.time_zone,
        hours,
        None if day >= today else end_of_day(day, config.tz),
    )


@dataclass
class DeviceView:
    device: str
    status: str  # online | offline | silent | unknown
    retired: bool
    retired_at: datetime | None
    registered_at: datetime
    last_seen_at: datetime | None
    outbox_depth: int | None
    outbox_oldest_at: str | None
    clock: str  # synced | unsynced | trusted (NTP state unknown, the collector's clock check passes) | untrusted | unknown
    device_clock_at: str | None
    version: str | None
    clock_reason: str | None = None  # why the collector does not trust its clock (English, from the device)
    config_pushed: PushedVersion | None = None  # the newest remote config version sent to it
    config_reported: ReportedConfig | None = None  # what its last heartbeat says about its config
    config_outcome: str | None = None  # the newest pushed version: applied | refused | rolled_back | pending
    software_update: "SoftwareUpdateNote | None" = None  # what the heartbeat says of the last software update offer


@dataclass(frozen=True)
class SoftwareUpdateNote:
    """The heartbeat's `update` object (collector/updates/offer.py), checked for type and length."""

    state: str  # staged | refused | rolled_back
    version: str
    reason: str | None


def _software_update(beat: dict[str, Any]) -> SoftwareUpdateNote | None:
    update = beat.get("update")
    if not isinstance(update, dict):
        return None
    state = update.get("state")
    rejected = update.get("rejected") if isinstance(update.get("rejected"), dict) else {}
    if state == "staged" and isinstance(update.get("offered"), str):
        return SoftwareUpdateNote("staged", update["offered"][:64], None)
    if state in ("refused", "rolled_back") and isinstance(rejected.get("version"), str):
        reason = rejected.get("reason")
        return SoftwareUpdateNote(state, rejected["version"][:64], reason[:300] if isinstance(reason, str) else None)
    return None


def _heartbeat(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _clock(ntp_synced: Any, verdict: Any) -> str:
    """What the page says of a device's clock: NTP's word first; where NTP cannot be asked (no systemd,
    a container), the collector's own check (collector/clock.py: plausible, not stepped)."""
    if verdict in ("implausible", "unvouched"):
        return "untrusted"
    if ntp_synced is True:
        return "synced"
    if ntp_synced is False:
        return "unsynced"
    return "trusted" if verdict == "ok" else "unknown"


def installation_view(session: Session, unit: str) -> list[DeviceView]:
    rows = session.scalars(select(DeviceRow).where(DeviceRow.unit == unit).order_by(DeviceRow.retired_at.is_not(None), DeviceRow.device))
    pushed = latest_versions(session, unit)
    devices = []
    for row in rows:
        beat = _heartbeat(row.last_status)
        outbox = beat.get("outbox") if isinstance(beat.get("outbox"), dict) else {}
        clock = beat.get("clock") if isinstance(beat.get("clock"), dict) else {}
        synced = clock.get("ntp_synced")
        depth = outbox.get("depth")
        version = beat.get("version")
        devices.append(
            DeviceView(
                device=row.device,
                status=row.status if row.status in ("online", "offline", "silent") else "unknown",
                retired=row.retired_at is not None,
                retired_at=row.retired_at,
                registered_at=row.registered_at,
                last_seen_at=row.last_seen_at,
                outbox_depth=depth if isinstance(depth, int) else None,
                outbox_oldest_at=outbox.get("oldest_at") if isinstance(outbox.get("oldest_at"), str) else None,
                clock=_clock(synced, clock.get("state")),
                clock_reason=str(clock["reason"]) if clock.get("state") in ("implausible", "unvouched") and clock.get("reason") else None,
                device_clock_at=beat.get("at") if isinstance(beat.get("at"), str) else None,
                version=str(version) if version is not None else None,
            )
        )
        reported = reported_config(row.last_status)
        newest = pushed.get(row.device)
        devices[-1].config_pushed, devices[-1].config_reported = newest, reported
        devices[-1].config_outcome = outcome_of(newest.version, reported) if newest else None
        devices[-1].software_update = _software_update(beat)
    return devices
