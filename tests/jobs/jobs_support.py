"""Helpers for the job tests: a clock the test moves, and a clinic that ingests events as a collector would."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import event

from vardkoll.protocol import (
    CallAbandoned,
    CallAnswered,
    CallbackBooked,
    CallbackDone,
    CallOffered,
    CallRejected,
    CareAssessed,
    CareCancelled,
    CareContact,
    CareExcluded,
    DoctorListing,
    EventBase,
    ListingSnapshot,
    VisitCompleted,
)
from vardkoll.server.ingest.service import Source
from vardkoll.server.services import Services
from vardkoll.server.storage.registry_tables import UnitRow

UNIT = "SE2321000016-15SF"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def local(day: date, hour: int = 0, minute: int = 0, tz: ZoneInfo = STOCKHOLM) -> datetime:
    """A unit-local wall-clock time as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


class Clinic:
    """Builds events for one unit and ingests them through `services.ingest`, as a collector would."""

    def __init__(self, services: Services, unit: str = UNIT) -> None:
        self.services = services
        self.unit = unit
        self._ids = itertools.count(1)

    def _base(self, at: datetime) -> dict:
        return {"v": 1, "id": f"ev-{self.unit[-4:]}-{next(self._ids):06d}", "unit": self.unit, "at": at}

    def ingest(self, *events: EventBase) -> None:
        report = self.services.ingest.ingest(
            list(events), Source("http"), received_at=datetime(2027, 1, 1, tzinfo=timezone.utc)
        )  # after every event of the tests: none is ahead of it
        assert not report.rejected, report.rejected

    # cases
    def contact(self, case: str, at: datetime, listed: bool = True) -> CareContact:
        return CareContact(**self._base(at), case=case, listed=listed, channel="phone")

    def assessed(self, case: str, at: datetime, profession: str = "nurse") -> CareAssessed:
        return CareAssessed(**self._base(at), case=case, profession=profession, form="phone")

    def excluded(self, case: str, at: datetime) -> CareExcluded:
        return CareExcluded(**self._base(at), case=case, reason="patient_choice")

    def cancelled(self, case: str, at: datetime) -> CareCancelled:
        return CareCancelled(**self._base(at), case=case)

    # calls
    def offered(self, call: str, at: datetime) -> CallOffered:
        return CallOffered(**self._base(at), call=call)

    def answered(self, call: str, at: datetime) -> CallAnswered:
        return CallAnswered(**self._base(at), call=call)

    def callback_booked(self, call: str, at: datetime) -> CallbackBooked:
        return CallbackBooked(**self._base(at), call=call)

    def callback_done(self, call: str, at: datetime) -> CallbackDone:
        return CallbackDone(**self._base(at), call=call)

    def abandoned(self, call: str, at: datetime) -> CallAbandoned:
        return CallAbandoned(**self._base(at), call=call)

    def rejected(self, call: str, at: datetime) -> CallRejected:
        return CallRejected(**self._base(at), call=call, reason="queue_full")

    # listing and visits
    def snapshot(self, at: datetime, listed: int, named_doctor: int) -> ListingSnapshot:
        doctors = (DoctorListing(doctor="doctor-aaa", listed=listed // 2), DoctorListing(doctor="doctor-bbb", listed=listed - listed // 2))
        return ListingSnapshot(**self._base(at), listed=listed, named_doctor=named_doctor, doctors=doctors)

    def visit(self, patient: str, practitioner: str, at: datetime, fixed_doctor: str | None = "doctor-aaa") -> VisitCompleted:
        return VisitCompleted(**self._base(at), patient=patient, practitioner=practitioner, profession="doctor", listed=True, fixed_doctor=fixed_doctor)


def register_unit(services: Services, unit: str, time_zone: str = "Europe/Stockholm") -> None:
    with services.sessions.begin() as session:
        session.add(UnitRow(unit=unit, name=f"Vårdcentralen {unit[-4:]}", region="Test", time_zone=time_zone))
    services.units.invalidate()


@contextmanager
def statements_counted(services: Services) -> Iterator[list[str]]:
    """The SQL statements run on the services' engine inside the block (an executemany counts once)."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(services.engine, "before_cursor_execute", count)
