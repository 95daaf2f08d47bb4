"""A hand-worked month for the report tests: March 2026 at two units of Region Uppsala.

Everything happens on 2 March 2026 or later in March, Stockholm time (+01:00 until the 29th).

VC01, telephone: 30 calls offered on 2 March; 24 answered that day, 3 called back on 3 March, 3 abandoned.
  calls 30, same day 24, share 24/30 = 0.8.
VC01, assessment (contacts on 2 March, all listed unless said):
  22 doctor, physical: 10 assessed 2 March (wait 0), 8 on 5 March (wait 3), 4 on 9 March (wait 7);
   5 nurse, phone: assessed 3 March (wait 1);
   1 physiotherapist, video: assessed 20 March (wait 18);
   1 doctor case excluded (patient's choice), assessed 10 March: outside, counted as excluded;
   1 case not listed, assessed 2 March: outside.
  doctor/physical  completed 22, wait 0: 10, 0–3: 18, 0–7: 22
  other/phone      completed  5, wait 0:  0, 0–3:  5, 0–7:  5
  other/video      completed  1, wait 0:  0, 0–3:  0, 0–7:  0
  other/all        completed  6, wait 0:  0, 0–3:  5, 0–7:  5
  all/all          completed 28, wait 0: 10, 0–3: 23, 0–7: 27, excluded 1; share 23/28 = 0.8214
  The API's figure: numerator 23, denominator 28.
VC01, fixed doctor: a snapshot on 31 March, listed 1 200, named doctor 700: share 0.5833.
VC02, telephone: 5 calls on 2 March, all answered: calls 5, same day 5, share 1.0. Nothing else.
"""

from __future__ import annotations

from typing import Any

VC01, VC02 = "SE2321000016-VC01", "SE2321000016-VC02"
UPPSALA = "Region Uppsala"
MONTH = "2026-03"


def _at(day: int, hour: int = 9) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00:00+01:00"


def _event(event_id: str, unit: str, kind: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "id": event_id, "type": kind, "unit": unit, "at": at, **fields}


def month_events() -> list[dict[str, Any]]:
    events = []
    for n in range(30):
        call = f"call-vc01-{n:03d}"
        events.append(_event(f"off-{n}", VC01, "call.offered", _at(2, 8), call=call))
        if n < 24:
            events.append(_event(f"ans-{n}", VC01, "call.answered", _at(2, 10), call=call))
        elif n < 27:
            events.append(_event(f"cbb-{n}", VC01, "call.callback_booked", _at(2, 9), call=call))
            events.append(_event(f"cbd-{n}", VC01, "call.callback_done", _at(3, 9), call=call))
        else:
            events.append(_event(f"abn-{n}", VC01, "call.abandoned", _at(2, 9), call=call))
    for n in range(5):
        call = f"call-vc02-{n:03d}"
        events.append(_event(f"v2off-{n}", VC02, "call.offered", _at(2, 8), call=call))
        events.append(_event(f"v2ans-{n}", VC02, "call.answered", _at(2, 9), call=call))

    def case(name: str, assessed_day: int, profession: str, form: str, listed: bool = True) -> None:
        events.append(_event(f"con-{name}", VC01, "care.contact", _at(2, 8), case=f"case-{name}", listed=listed, channel="phone"))
        events.append(_event(f"ass-{name}", VC01, "care.assessed", _at(assessed_day, 11), case=f"case-{name}", profession=profession, form=form))

    for n in range(22):
        case(f"doc{n:02d}", 2 if n < 10 else 5 if n < 18 else 9, "doctor", "physical")
    for n in range(5):
        case(f"nur{n}", 3, "nurse", "phone")
    case("phy0", 20, "physiotherapist", "video")
    case("excl0", 10, "doctor", "physical")
    events.append(_event("exc-excl0", VC01, "care.excluded", _at(2, 12), case="case-excl0", reason="patient_choice"))
    case("unl0", 2, "doctor", "physical", listed=False)
    events.append(_event("snap-31", VC01, "listing.snapshot", _at(31, 6).replace("+01:00", "+02:00"), listed=1200, named_doctor=700))
    return events


def lines_by_key(report: dict[str, Any]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return {(line["unit"], line["section"], line["group"], line["form"]): line for line in report["lines"]}
