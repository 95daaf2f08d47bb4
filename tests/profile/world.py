"""A hand-worked year for the clinic profile: two units of Region Västernorrland, events in February and
March 2026 only, profile month March 2026 (the 12 months April 2025 to March 2026).

Stockholm time, +01:00 throughout (summer time starts on 29 March, after every event but the snapshot).

VN01 "Hälsocentralen Björkå" (the profile's unit):
  telephone target 0.85 from 1 January 2026 (the default 0.9 before).
  February, telephone: 10 calls on 2 Feb, 9 answered, 1 abandoned: 9 av 10 = 90,0 %, under 20 (litet underlag).
  March, telephone: 25 calls on 2 Mar, 20 answered, 5 abandoned: 20 av 25 = 80,0 %, under the target 85 %.
  March, assessment: 4 listed cases, contact 2 Mar (deadline: end of 5 Mar); 3 assessed 4 Mar (in time),
    1 assessed 9 Mar (late): 3 av 4 = 75,0 %.
  Fixed doctor: one snapshot, 15 March: listed 3 000, named doctor 2 400: 2 400 av 3 000 = 80,0 % in March,
    no data in February (no snapshot yet). Doctors: doc-vn01-a 1 250 (above 1 100), doc-vn01-b 1 100 (at the
    guideline, not above), doc-vn01-c 50, doc-vn01-d 600 but not active (left out).
    Longest list first: Läkare 1 = doc-vn01-a, Läkare 2 = doc-vn01-b, Läkare 3 = doc-vn01-c; 1 of 3 above.
  March, continuity: 4 doctor visits of listed patients with a fixed doctor, 3 with that doctor: 3 av 4 = 75,0 %.
VN02 "Vårdcentralen Sörby":
  March, telephone: 15 calls on 2 Mar, all answered. March, assessment: 1 listed case assessed the same day.
  Fixed doctor: snapshot 15 March, listed 1 000, named doctor 900.
The region (VN01 + VN02):
  telephone: February 9 av 10 = 90,0 %; March 35 av 40 = 87,5 %.
  assessment: March 4 av 5 = 80,0 %.   fixed doctor: March 3 300 av 4 000 = 82,5 %.
  continuity: March 3 av 4 = 75,0 % (VN02 has no visits).
Every other month: no data ("–") for the unit and the region.
"""

from __future__ import annotations

from typing import Any

VN01, VN02 = "SE2321000016-VN01", "SE2321000016-VN02"
VN01_NAME, VN02_NAME = "Hälsocentralen Björkå", "Vårdcentralen Sörby"
REGION = "Region Västernorrland"
MONTH = "2026-03"


def _at(month: int, day: int, hour: int = 9) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00+01:00"


def _event(event_id: str, unit: str, kind: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "id": event_id, "type": kind, "unit": unit, "at": at, **fields}


def _calls(events: list[dict[str, Any]], unit: str, month: int, offered: int, answered: int) -> None:
    for n in range(offered):
        call = f"call-{unit[-4:].lower()}-{month:02d}-{n:03d}"
        events.append(_event(f"off-{call}", unit, "call.offered", _at(month, 2, 8), call=call))
        if n < answered:
            events.append(_event(f"ans-{call}", unit, "call.answered", _at(month, 2, 10), call=call))
        else:
            events.append(_event(f"abn-{call}", unit, "call.abandoned", _at(month, 2, 9), call=call))


def _case(events: list[dict[str, Any]], unit: str, name: str, assessed_day: int) -> None:
    events.append(_event(f"con-{name}", unit, "care.contact", _at(3, 2, 8), case=f"case-{name}", listed=True, channel="phone"))
    events.append(_event(f"ass-{name}", unit, "care.assessed", _at(3, assessed_day, 11), case=f"case-{name}", profession="doctor", form="physical"))


def year_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    _calls(events, VN01, 2, 10, 9)
    _calls(events, VN01, 3, 25, 20)
    _calls(events, VN02, 3, 15, 15)
    for n in range(3):
        _case(events, VN01, f"vn01-in-time-{n}", 4)
    _case(events, VN01, "vn01-late", 9)
    _case(events, VN02, "vn02-same-day", 2)
    doctors = [
        {"doctor": "doc-vn01-a", "listed": 1250},
        {"doctor": "doc-vn01-b", "listed": 1100},
        {"doctor": "doc-vn01-c", "listed": 50},
        {"doctor": "doc-vn01-d", "listed": 600, "active": False},
    ]
    events.append(_event("snap-vn01", VN01, "listing.snapshot", _at(3, 15, 6), listed=3000, named_doctor=2400, doctors=doctors))
    events.append(_event("snap-vn02", VN02, "listing.snapshot", _at(3, 15, 6), listed=1000, named_doctor=900))
    for n, practitioner in enumerate(("doc-vn01-a", "doc-vn01-a", "doc-vn01-b", "doc-vn01-c")):
        events.append(
            _event(
                f"visit-vn01-{n}",
                VN01,
                "visit.completed",
                _at(3, 10 + n, 13),
                patient=f"pat-vn01-{n}",
                practitioner=practitioner,
                profession="doctor",
                listed=True,
                fixed_doctor="doc-vn01-b" if n == 3 else practitioner,
            )
        )
    return events
