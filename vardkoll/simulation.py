"""Realistic wire-protocol v1 events (SPEC 3.1) for many clinics, deterministic for a given seed.

As a module (the demo's clinics and the benchmarks use it)::

    from vardkoll.simulation import generate
    for event in generate(seed=1, units=40, days=56, start_date=date(2026, 3, 2)):
        line = orjson.dumps(event)

As a script::

    python -m vardkoll.simulation --events 1000000 --out bench/data/events.jsonl.gz

What the archive looks like, per unit (a primary-care clinic, vårdcentral):

- Telephone: on weekdays a morning peak (most `call.offered` between 08:00 and 10:00 local time, Monday
  busiest). About 40 % are answered directly, about 45 % book a callback that is made the same day or
  (at clinics that fall behind) the next working day; about 5 % of callbacks do not reach the caller;
  some callers hang up. Calls before 08:00, after closing and at weekends are rejected as `closed`;
  once a busy morning fills the day's callback slots, further callers are rejected as `queue_full`.
- Care: `care.contact` by phone, digital, drop-in visit or other (about 3 % of patients not listed),
  assessed 0–5 days later (mostly within 3; clinics closed at weekends push assessments to Monday);
  some cases are excluded (the patient chooses to wait) or cancelled, some stay open, a few are data
  faults (an assessment without contact, an assessment timed before its contact).
- A daily `listing.snapshot` at 02:00 with a per-doctor list, and `visit.completed` for listed patients,
  of whom most have a fixed doctor whom they meet in about 60 % of doctor visits.

Every clinic differs (size, how well it keeps up), so figures range from poor to excellent as they do in
real life. Times are written with the correct Europe/Stockholm offset (+01:00 / +02:00 across the DST
change), about 10 % in UTC with `Z`. The archive is roughly in time order, but about 2 % of the lines are
out of order and about 0.5 % are repeated, as a real archive is.

No string holds a run of digits that could form a personal identity number: pseudonyms are scrambled
base32, ids use base36 counters, and no value carries ten digits in a row (an HSA-id's organisation
number aside, which is not a valid date).
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import random
import sys
import time
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

__all__ = ["GENERATOR_VERSION", "generate", "write_events"]

# Bump when the generated stream changes, so cached benchmark files are re-made.
GENERATOR_VERSION = 2

STOCKHOLM = ZoneInfo("Europe/Stockholm")
DEFAULT_START = date(2026, 3, 2)  # a Monday; eight weeks from here cross the DST change of 29 March

# Organisation numbers of a few regions (public organisations, not people).
_REGION_ORG_NUMBERS = ("2321000016", "2321000131", "2321000255", "2321000032", "2321000065")
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_MASK40 = (1 << 40) - 1
_SCRAMBLE = 0x9E3779B97F  # odd: multiplication modulo 2**40 is a bijection, so pseudonyms stay unique

_SALTS = {"c": 0x1D2C3B4A59, "k": 0x2E1F0A9B8C, "p": 0x3A4B5C6D7E, "d": 0x4F0E1D2C3B, "h": 0x5A6978879F}
_HOUR = 3600
_MINUTE = 60

_PROFESSIONS_ASSESSMENT = (
    ("nurse", 0.55),
    ("doctor", 0.30),
    ("physiotherapist", 0.06),
    ("psychologist", 0.04),
    ("occupational_therapist", 0.02),
    ("other_licensed", 0.03),
)
_FORMS_ASSESSMENT = (("phone", 0.42), ("physical", 0.30), ("chat", 0.12), ("video", 0.08), ("letter", 0.04), ("home", 0.04))
_FORMS_DIGITAL = (("chat", 0.55), ("video", 0.15), ("phone", 0.15), ("physical", 0.10), ("letter", 0.05))
_CHANNELS = (("phone", 0.50), ("digital", 0.27), ("visit", 0.18), ("other", 0.05))
_PROFESSIONS_VISIT = (("doctor", 0.55), ("nurse", 0.30), ("physiotherapist", 0.08), ("psychologist", 0.04), ("occupational_therapist", 0.03))
_FORMS_VISIT = (("physical", 0.85), ("video", 0.08), ("phone", 0.05), ("home", 0.02))
# Weekday factors for call and contact volume, Monday first.
_WEEKDAY_LOAD = (1.35, 1.05, 1.0, 0.95, 0.85)


def _base36(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_BASE36[r])
    return "".join(reversed(out))


def _token(n: int, salt: int = 0) -> str:
    """Eight base32 characters that look like a keyed hash; for one salt, distinct n give distinct tokens."""
    x = ((n + 1) * _SCRAMBLE + salt) & _MASK40
    return "".join(_BASE32[(x >> shift) & 31] for shift in (35, 30, 25, 20, 15, 10, 5, 0))


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    r = rng.random()
    for value, weight in table:
        r -= weight
        if r < 0:
            return value
    return table[-1][0]


class _Clock:
    """Local calendar days as epoch seconds, DST-aware, and the formatting of `at` values."""

    def __init__(self, start: date, days: int, rng: random.Random) -> None:
        self.start = start
        self.midnights = [self.local(start + timedelta(days=d), 0) for d in range(days + 30)]
        self.rng = rng

    @staticmethod
    def local(day: date, seconds: float) -> int:
        """Epoch seconds of a local wall-clock time on `day` (a time that does not exist in spring is
        read with the winter offset, i.e. moves an hour on, as clocks do)."""
        # Adding a timedelta to an aware datetime is wall-clock arithmetic in Python.
        wall = datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM) + timedelta(seconds=int(seconds))
        return int(wall.timestamp())

    def day_index(self, epoch: int) -> int:
        return bisect_right(self.midnights, epoch) - 1

    def at(self, epoch: int) -> str:
        if self.rng.random() < 0.10:
            return datetime.fromtimestamp(epoch, UTC).isoformat()[:-6] + "Z"
        return datetime.fromtimestamp(epoch, STOCKHOLM).isoformat()


class _Unit:
    """One clinic: its size, how well it keeps up, its staff and its pseudonym counters."""

    def __init__(self, index: int, rng: random.Random) -> None:
        self.index = index
        org = _REGION_ORG_NUMBERS[index % len(_REGION_ORG_NUMBERS)]
        suffix = f"VC{index + 1:02d}" if index < 99 else f"VC{_base36(index + 1).upper()}"
        self.hsa_id = f"SE{org}-{suffix}"
        self.device = f"pi-{suffix.lower()}-a"
        self.tag = _base36(index)
        self.listed = rng.randint(4_000, 18_000)
        self.named_share = rng.uniform(0.35, 0.85)
        self.call_rate = rng.uniform(0.014, 0.022)  # calls per listed patient and weekday
        self.contact_rate = rng.uniform(0.0045, 0.0065)
        self.visit_rate = rng.uniform(0.0035, 0.0055)
        self.answer_share = min(0.6, max(0.2, rng.gauss(0.40, 0.06)))
        self.callback_share = min(0.6, max(0.3, rng.gauss(0.45, 0.05)))
        self.same_day_callback = rng.uniform(0.50, 0.97)  # clinics range from poor to excellent
        self.callback_capacity = rng.uniform(0.95, 1.30)  # slots per weekday, against an average Tuesday
        self.assess_within_3 = rng.uniform(0.78, 0.98)
        self.continuity = min(0.85, max(0.35, rng.gauss(0.60, 0.08)))
        self.sends_doctor_list = rng.random() < 0.9
        doctor_count = max(3, round(self.listed * self.named_share / rng.uniform(900, 1400)))
        self.doctors = [self.pseudonym("d", n) for n in range(doctor_count)]
        weights = [rng.uniform(0.5, 1.5) for _ in range(doctor_count)]
        total = sum(weights)
        self.doctor_weights = [w / total for w in weights]
        self.doctor_cumulative = []
        acc = 0.0
        for w in self.doctor_weights:
            acc += w
            self.doctor_cumulative.append(acc)
        self.inactive_doctor = rng.randrange(doctor_count) if rng.random() < 0.3 else None
        self.locums = [self.pseudonym("d", 1000 + n) for n in range(2)]
        self.staff = [self.pseudonym("h", n) for n in range(max(4, doctor_count * 2))]
        self.frequent_patients = max(50, self.listed // 30)
        self.calls = 0
        self.cases = 0
        self.events = 0

    def pseudonym(self, prefix: str, n: int) -> str:
        return f"{prefix}-{self.tag}-{_token(n, _SALTS[prefix] * (self.index + 1))}"

    def event_id(self) -> str:
        self.events += 1
        return f"e-{self.index}-{_base36(self.events)}"

    def fixed_doctor_of(self, patient: int) -> str | None:
        """Deterministic per patient: whether they have a named fixed doctor, and whom."""
        h = ((patient + 1) * 2654435761) & 0xFFFFFFFF
        if h / 2**32 >= self.named_share:
            return None
        r = (((patient + 7) * 40503) & 0xFFFF) / 2**16
        return self.doctors[min(bisect_right(self.doctor_cumulative, r), len(self.doctors) - 1)]

    def draw_patient(self, rng: random.Random) -> int:
        if rng.random() < 0.35:  # a few chronic patients make many of the visits
            return rng.randrange(self.frequent_patients)
        return rng.randrange(self.listed)


class _Day:
    """Collects the events of one generation day into per-local-day buckets."""

    def __init__(self, clock: _Clock, buckets: dict[int, list[tuple[int, int, dict[str, Any]]]], today: int) -> None:
        self.clock = clock
        self.buckets = buckets
        self.today = today
        self.seq = 0

    def emit(self, unit: _Unit, epoch: int, kind: str, **fields: Any) -> None:
        event: dict[str, Any] = {
            "v": 1,
            "id": unit.event_id(),
            "type": kind,
            "unit": unit.hsa_id,
            "at": self.clock.at(epoch),
            "device": unit.device,
        }
        event.update(fields)
        bucket = max(self.today, self.clock.day_index(epoch))
        self.seq += 1
        self.buckets.setdefault(bucket, []).append((epoch, self.seq, event))


def _next_working_day(day: date, plus: int = 1) -> date:
    day = day + timedelta(days=plus)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _call_times(rng: random.Random, count: int) -> list[float]:
    """Seconds after local midnight: a morning peak right at opening, a lunch dip, a few outside hours."""
    times = []
    for _ in range(count):
        r = rng.random()
        if r < 0.05:
            times.append(rng.uniform(7 * _HOUR + 30 * _MINUTE, 8 * _HOUR))  # before opening
        elif r < 0.67:
            times.append(rng.triangular(8 * _HOUR, 10 * _HOUR, 8 * _HOUR + 10 * _MINUTE))
        elif r < 0.99:
            t = rng.uniform(10 * _HOUR, 16 * _HOUR + 30 * _MINUTE)
            if 12 * _HOUR <= t < 13 * _HOUR and rng.random() < 0.5:
                t = rng.uniform(13 * _HOUR, 15 * _HOUR)
            times.append(t)
        else:
            times.append(rng.uniform(16 * _HOUR + 30 * _MINUTE, 18 * _HOUR))  # after closing
    times.sort()
    return times


def _calls(rng: random.Random, out: _Day, unit: _Unit, day: date) -> None:
    clock = out.clock
    weekday = day.weekday()
    if weekday >= 5:
        for _ in range(max(0, round(rng.gauss(unit.listed * 0.0008, 2)))):
            unit.calls += 1
            t = clock.local(day, rng.uniform(8 * _HOUR, 16 * _HOUR))
            out.emit(unit, t, "call.rejected", call=unit.pseudonym("c", unit.calls), reason="closed")
        return
    mean = unit.listed * unit.call_rate
    volume = max(0, round(mean * _WEEKDAY_LOAD[weekday] * rng.lognormvariate(0, 0.12)))
    slots_left = round(mean * 1.05 * unit.callback_share * unit.callback_capacity)
    closing = 16 * _HOUR + 30 * _MINUTE
    for seconds in _call_times(rng, volume):
        unit.calls += 1
        call = unit.pseudonym("c", unit.calls)
        offered = clock.local(day, seconds)
        if seconds < 8 * _HOUR or seconds >= closing:
            out.emit(unit, offered, "call.rejected", call=call, reason="closed")
            continue
        r = rng.random()
        wants_callback = unit.answer_share <= r < unit.answer_share + unit.callback_share
        if wants_callback and slots_left <= 0:  # the day's callback slots are gone
            out.emit(unit, offered, "call.rejected", call=call, reason="queue_full")
            continue
        offered_fields: dict[str, Any] = {"call": call}
        q = rng.random()
        if q < 0.6:
            offered_fields["queue"] = "radgivning"
        elif q < 0.9:
            offered_fields["queue"] = "tidbokning"
        out.emit(unit, offered, "call.offered", **offered_fields)
        if r < unit.answer_share:
            wait = min(20 * _MINUTE, 10 + rng.expovariate(1 / 120))
            out.emit(unit, offered + int(wait), "call.answered", call=call)
        elif wants_callback:
            slots_left -= 1
            booked = offered + int(rng.uniform(15, 75))
            if rng.random() < 0.995:
                done = _callback_time(rng, clock, unit, day, seconds)
            else:
                done = None  # lost in the callback system: pending for ever
            booked_fields: dict[str, Any] = {"call": call}
            if done is not None and rng.random() < 0.8:
                booked_fields["slot"] = clock.at(max(booked + 5 * _MINUTE, done - int(rng.uniform(0, 20 * _MINUTE))))
            out.emit(unit, booked, "call.callback_booked", **booked_fields)
            if done is not None:
                done_fields: dict[str, Any] = {"call": call}
                if rng.random() < 0.05:
                    done_fields["reached"] = False
                elif rng.random() < 0.3:
                    done_fields["reached"] = True
                out.emit(unit, max(done, booked + 60), "call.callback_done", **done_fields)
        else:
            wait = 20 + rng.expovariate(1 / 150)
            out.emit(unit, offered + int(min(wait, 15 * _MINUTE)), "call.abandoned", call=call)


def _callback_time(rng: random.Random, clock: _Clock, unit: _Unit, day: date, offered_s: float) -> int:
    """When the clinic calls back: mostly the same day, otherwise the next working day(s)."""
    last_call = 17 * _HOUR
    if rng.random() < unit.same_day_callback and offered_s + 15 * _MINUTE < last_call:
        return clock.local(day, rng.uniform(offered_s + 10 * _MINUTE, min(offered_s + 6 * _HOUR, last_call)))
    later = _next_working_day(day, 2 if rng.random() < 0.05 else 1)
    return clock.local(later, rng.uniform(8 * _HOUR, 12 * _HOUR))


def _care(rng: random.Random, out: _Day, unit: _Unit, day: date) -> None:
    clock = out.clock
    weekday = day.weekday()
    if weekday >= 5:
        count = max(0, round(rng.gauss(unit.listed * 0.0012, 2)))
    else:
        count = max(0, round(unit.listed * unit.contact_rate * _WEEKDAY_LOAD[weekday] * rng.lognormvariate(0, 0.1)))
    for _ in range(count):
        channel = "digital" if weekday >= 5 else _pick(rng, _CHANNELS)
        if channel == "digital":
            seconds = rng.uniform(6 * _HOUR, 23 * _HOUR)
        elif channel == "phone":
            seconds = rng.triangular(8 * _HOUR, 16 * _HOUR, 8 * _HOUR + 30 * _MINUTE)
        else:
            seconds = rng.uniform(8 * _HOUR, 16 * _HOUR + 30 * _MINUTE)
        contact = clock.local(day, seconds)
        unit.cases += 1
        case = unit.pseudonym("k", unit.cases)
        r = rng.random()
        if r < 0.002:  # data fault: an assessment whose contact never arrived
            out.emit(unit, contact, "care.assessed", case=case, profession=_pick(rng, _PROFESSIONS_ASSESSMENT), form=_pick(rng, _FORMS_ASSESSMENT))
            continue
        contact_fields: dict[str, Any] = {"case": case, "listed": rng.random() >= 0.03, "channel": channel}
        if rng.random() < 0.85:
            contact_fields["patient"] = unit.pseudonym("p", unit.draw_patient(rng))
        out.emit(unit, contact, "care.contact", **contact_fields)
        if rng.random() < 0.01:  # the same case registered twice; the earliest contact counts
            out.emit(unit, contact + int(rng.uniform(5 * _MINUTE, 2 * _HOUR)), "care.contact", **dict(contact_fields, channel="phone"))
        forms = _FORMS_DIGITAL if channel == "digital" else _FORMS_ASSESSMENT
        if r < 0.003:  # data fault: an assessment dated before its contact (a wrong date keyed in)
            out.emit(
                unit,
                contact - int(rng.uniform(26 * _HOUR, 3 * 24 * _HOUR)),
                "care.assessed",
                case=case,
                profession=_pick(rng, _PROFESSIONS_ASSESSMENT),
                form=_pick(rng, forms),
            )
        elif r < 0.033:  # cancelled before any assessment
            out.emit(unit, contact + int(rng.uniform(30 * _MINUTE, 2 * 24 * _HOUR)), "care.cancelled", case=case)
        elif r < 0.063:  # excluded: patient chooses to wait, or a medically motivated wait
            reason = "patient_choice" if rng.random() < 0.7 else "medical"
            out.emit(unit, contact + int(rng.uniform(10 * _MINUTE, 24 * _HOUR)), "care.excluded", case=case, reason=reason)
            if rng.random() < 0.7:
                later = _next_working_day(day, rng.randint(4, 14))
                out.emit(
                    unit,
                    clock.local(later, rng.uniform(8 * _HOUR, 17 * _HOUR)),
                    "care.assessed",
                    case=case,
                    profession=_pick(rng, _PROFESSIONS_ASSESSMENT),
                    form=_pick(rng, forms),
                )
        elif r < 0.078:  # still open (lost, or waiting beyond the archive)
            continue
        else:
            assessed = _assessment_time(rng, clock, unit, day, seconds, channel)
            profession = _pick(rng, _PROFESSIONS_ASSESSMENT)
            out.emit(unit, assessed, "care.assessed", case=case, profession=profession, form=_pick(rng, forms))
            if rng.random() < 0.02:  # a follow-up assessment; only the first counts
                later = _next_working_day(_clock_date(clock, assessed), rng.randint(1, 10))
                out.emit(
                    unit,
                    clock.local(later, rng.uniform(8 * _HOUR, 17 * _HOUR)),
                    "care.assessed",
                    case=case,
                    profession="doctor",
                    form=_pick(rng, _FORMS_ASSESSMENT),
                )


def _clock_date(clock: _Clock, epoch: int) -> date:
    return clock.start + timedelta(days=clock.day_index(epoch))


def _assessment_time(rng: random.Random, clock: _Clock, unit: _Unit, day: date, contact_s: float, channel: str) -> int:
    if rng.random() < unit.assess_within_3:
        wait_days = _pick(rng, (("0", 0.45), ("1", 0.25), ("2", 0.17), ("3", 0.13)))
    else:
        wait_days = _pick(rng, (("4", 0.6), ("5", 0.4)))
    wait = int(wait_days)
    if wait == 0:
        if contact_s < 16 * _HOUR:
            return clock.local(day, rng.uniform(contact_s + 15 * _MINUTE, max(contact_s + 20 * _MINUTE, min(contact_s + 5 * _HOUR, 17 * _HOUR))))
        if channel == "digital" and contact_s < 21 * _HOUR:  # the evening digital service
            return clock.local(day, rng.uniform(contact_s + 10 * _MINUTE, contact_s + 2 * _HOUR))
        wait = 1
    target = day + timedelta(days=wait)
    if target.weekday() >= 5 and channel != "digital":  # closed at weekends: Monday it is
        target = _next_working_day(target, 0)
    return clock.local(target, rng.uniform(8 * _HOUR, 17 * _HOUR))


def _listing(rng: random.Random, out: _Day, unit: _Unit, day: date) -> None:
    unit.listed = max(1000, unit.listed + rng.randint(-8, 10))
    unit.named_share = min(0.95, max(0.2, unit.named_share + rng.uniform(-0.002, 0.002)))
    named = round(unit.listed * unit.named_share)
    fields: dict[str, Any] = {"listed": unit.listed, "named_doctor": named}
    if unit.sends_doctor_list:
        doctors = []
        remaining = named
        for i, (doctor, weight) in enumerate(zip(unit.doctors, unit.doctor_weights)):
            size = remaining if i == len(unit.doctors) - 1 else min(remaining, round(named * weight))
            remaining -= size
            entry: dict[str, Any] = {"doctor": doctor, "listed": size}
            if i == unit.inactive_doctor:
                entry["active"] = False
            doctors.append(entry)
        fields["doctors"] = doctors
    out.emit(unit, out.clock.local(day, 2 * _HOUR), "listing.snapshot", **fields)


def _visits(rng: random.Random, out: _Day, unit: _Unit, day: date) -> None:
    weekday = day.weekday()
    if weekday >= 5:
        return
    count = max(0, round(unit.listed * unit.visit_rate * rng.lognormvariate(0, 0.1)))
    for _ in range(count):
        patient_index = unit.draw_patient(rng)
        listed = rng.random() >= 0.04
        fixed = unit.fixed_doctor_of(patient_index) if listed else None
        profession = _pick(rng, _PROFESSIONS_VISIT)
        if profession == "doctor":
            if fixed is not None and rng.random() < unit.continuity:
                practitioner = fixed
            elif rng.random() < 0.1:
                practitioner = rng.choice(unit.locums)
            else:  # another of the clinic's doctors
                practitioner = rng.choice(unit.doctors)
                if practitioner == fixed:
                    practitioner = unit.doctors[(unit.doctors.index(fixed) + 1) % len(unit.doctors)]
        else:
            practitioner = rng.choice(unit.staff)
        fields: dict[str, Any] = {
            "patient": unit.pseudonym("p", patient_index),
            "practitioner": practitioner,
            "profession": profession,
            "listed": listed,
        }
        if fixed is not None:
            fields["fixed_doctor"] = fixed
        elif rng.random() < 0.5:
            fields["fixed_doctor"] = None
        if rng.random() < 0.9:
            fields["form"] = _pick(rng, _FORMS_VISIT)
        out.emit(unit, out.clock.local(day, rng.uniform(8 * _HOUR, 16 * _HOUR + 30 * _MINUTE)), "visit.completed", **fields)


def generate(seed: int = 1, units: int = 40, days: int = 56, start_date: date = DEFAULT_START) -> Iterator[dict[str, Any]]:
    """Yield the archive of `units` clinics over `days` local days from `start_date`, roughly in time
    order (about 2 % of events out of order, about 0.5 % repeated). Deterministic for a given seed.
    Events that would fall after the last day are left out (cases and callbacks still open)."""
    if not 1 <= units <= 9999:
        raise ValueError("units must be between 1 and 9999")
    rng = random.Random(seed)
    clinics = [_Unit(i, rng) for i in range(units)]
    clock = _Clock(start_date, days, random.Random(seed * 7919 + 1))
    shuffle = random.Random(seed * 104729 + 2)
    buckets: dict[int, list[tuple[int, int, dict[str, Any]]]] = {}
    for today in range(days):
        day = start_date + timedelta(days=today)
        out = _Day(clock, buckets, today)
        for unit in clinics:
            _listing(rng, out, unit, day)
            _calls(rng, out, unit, day)
            _care(rng, out, unit, day)
            _visits(rng, out, unit, day)
        batch = buckets.pop(today, [])
        batch.sort(key=lambda item: (item[0], item[1]))
        events = [item[2] for item in batch]
        yield from _as_archived(shuffle, events)


def _as_archived(rng: random.Random, events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Disorder a time-ordered day as delivery does: ~2 % of events out of place, ~0.5 % sent twice."""
    n = len(events)
    for i in range(n):
        if rng.random() < 0.01:  # a swap puts two events out of order
            j = min(n - 1, i + rng.randint(1, 2000))
            events[i], events[j] = events[j], events[i]
    redelivered: list[tuple[int, int, dict[str, Any]]] = []  # a heap of (position, order, event)
    for i, event in enumerate(events):
        yield event
        if rng.random() < 0.005:
            heapq.heappush(redelivered, (i + rng.randint(0, 500), i, event))
        while redelivered and redelivered[0][0] <= i:
            yield heapq.heappop(redelivered)[2]
    while redelivered:
        yield heapq.heappop(redelivered)[2]


def write_events(path: Path, events: int, seed: int = 1, units: int = 40, start_date: date = DEFAULT_START, progress: bool = True) -> dict[str, Any]:
    """Write exactly `events` lines (gzip when the name ends in .gz), days being added until the count is
    reached (the last day is cut where it runs out). Returns what was written: lines, distinct events,
    repeated lines, bytes; the same goes to `<path>.meta.json` so a cached file can be checked."""
    import orjson

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    opener = gzip.open if path.name.endswith(".gz") else open
    started = time.perf_counter()
    written = 0
    size = 0
    seen: set[str] = set()
    repeated = 0
    with opener(partial, "wb") as out:
        stream = generate(seed, units, days=36500, start_date=start_date)
        chunk: list[bytes] = []
        for event in islice(stream, events):
            if event["id"] in seen:
                repeated += 1
            else:
                seen.add(event["id"])
            chunk.append(orjson.dumps(event))
            if len(chunk) == 10_000:
                data = b"\n".join(chunk) + b"\n"
                out.write(data)
                size += len(data)
                written += len(chunk)
                chunk.clear()
                if progress and written % 200_000 == 0:
                    rate = written / (time.perf_counter() - started)
                    print(f"  generated {written:,} events ({rate:,.0f}/s)", file=sys.stderr)
        if chunk:
            data = b"\n".join(chunk) + b"\n"
            out.write(data)
            size += len(data)
            written += len(chunk)
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "units": units,
        "start_date": start_date.isoformat(),
        "lines": written,
        "distinct_events": len(seen),
        "repeated_lines": repeated,
        "bytes_uncompressed": size,
    }
    partial.replace(path)
    path.with_name(path.name + ".meta.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write realistic vardkoll wire-protocol v1 events as JSON lines.")
    parser.add_argument("--events", type=int, default=1_000_000, help="number of lines to write (default 1 000 000)")
    parser.add_argument("--out", type=Path, default=Path("bench/data/events.jsonl"), help="output file; .gz is gzipped")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--units", type=int, default=40, help="number of clinics (default 40)")
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START, help="first local day (default 2026-03-02)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    meta = write_events(args.out, args.events, args.seed, args.units, args.start)
    print(f"wrote {meta['lines']:,} events ({meta['repeated_lines']:,} repeated lines) to {args.out} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
