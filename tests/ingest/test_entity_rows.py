"""The ingest fold (`EntityRows`) keeps, per call and case, what the metric ledgers keep: the earliest
event of each kind by (instant, event id), and the values that came with it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from support.event_drafts import CALL_KINDS, CASE_KINDS, call_and_case_fields
from vardkoll.protocol import validate_event
from vardkoll.server.ingest.entity_rows import CALL_COLUMNS, CASE_COLUMNS, EntityRows
from vardkoll.server.storage.tables import CALL_STAMPS, CASE_STAMPS
from vardkoll.server.metrics.assessment import CaseLedger
from vardkoll.server.metrics.stamps import Stamp
from vardkoll.server.metrics.telephone import CallLedger
from vardkoll.server.storage.stamp_keys import epoch_us, stamp_key

UNIT = "SE2321000016-VC01"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
# Around the spring DST change; few distinct minutes, so that instants tie and the event id decides.
BASE = datetime(2026, 3, 28, 22, 0, tzinfo=timezone.utc)


@st.composite
def drafts(draw):
    kind = draw(st.sampled_from([*CALL_KINDS, *CASE_KINDS]))
    at = BASE + timedelta(minutes=30 * draw(st.integers(0, 8)))
    event = {"v": 1, "type": kind, "unit": UNIT, "at": at.astimezone(draw(st.sampled_from([timezone.utc, STOCKHOLM]))).isoformat()}
    event.update(call_and_case_fields(draw, kind, ["call-a1", "call-b2"], ["case-a1", "case-b2"]))
    return event


def ledger_rows(events):
    """The rows as the ledgers see them: their states, written in stamp keys."""
    calls, cases = CallLedger(), CaseLedger()
    for event in events:
        stamp = Stamp(event.at, event.id, event.at.astimezone(STOCKHOLM).date())
        (calls if type(event) in CallLedger.event_classes else cases).apply(event, stamp)
    key = lambda stamp: None if stamp is None else stamp_key(stamp.at, stamp.event_id)  # noqa: E731
    day = lambda stamp: None if stamp is None else stamp.day  # noqa: E731
    call_rows = [
        [UNIT, call, *(key(getattr(state, name)) for name in CALL_STAMPS), day(state.offered), day(state.rejected), None]  # version: merge_rows sets it
        for call, state in sorted(calls.calls.items())
    ]
    case_rows = [
        [
            UNIT,
            case,
            *(key(getattr(state, name)) for name in CASE_STAMPS),
            day(state.contact),
            state.listed if state.contact else None,
            day(state.assessed),
            state.profession if state.assessed else None,
            None,  # version: merge_rows sets it
        ]
        for case, state in sorted(cases.cases.items())
    ]
    return call_rows, case_rows


def folded_rows(events):
    rows = EntityRows()
    for event in events:
        rows.add(event, epoch_us(event.at), STOCKHOLM)
    return rows.calls(), rows.cases()


@settings(deadline=None, max_examples=300)
@given(st.lists(drafts(), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_the_fold_keeps_what_the_ledgers_keep_in_any_order(items, rng):
    events = [validate_event({**draft, "id": f"ev-{index:02d}"}) for index, draft in enumerate(items)]
    expected = ledger_rows(events)
    rng.shuffle(events)
    assert folded_rows(events) == expected


def test_worked_example_earliest_by_instant_then_by_id():
    """Worked by hand: two offers at the same instant (the smaller id wins), a callback made but not
    reached and then one reached, and a rejection whose local date is not its UTC date."""
    at = lambda text: datetime.fromisoformat(text)  # noqa: E731
    raw = [
        {"type": "call.offered", "id": "ev-b", "at": "2026-03-28T22:30:00Z"},
        {"type": "call.offered", "id": "ev-a", "at": "2026-03-28T23:30:00+01:00"},
        {"type": "call.callback_done", "id": "ev-c", "at": "2026-03-29T08:00:00Z", "reached": False},
        {"type": "call.callback_done", "id": "ev-d", "at": "2026-03-29T09:00:00Z", "reached": True},
        {"type": "call.rejected", "id": "ev-e", "at": "2026-03-29T00:10:00+01:00", "reason": "queue_full"},
    ]
    events = [validate_event({"v": 1, "unit": UNIT, "call": "call-a1", **item}) for item in raw]
    calls, cases = folded_rows(events)
    key = lambda text, event_id: f"{epoch_us(at(text)):017d}|{event_id}"  # noqa: E731
    row = dict(zip(CALL_COLUMNS, calls[0]))
    assert (cases, len(calls)) == ([], 1)
    assert row["offered"] == key("2026-03-28T22:30:00Z", "ev-a")  # same instant as ev-b; "ev-a" < "ev-b"
    assert row["offered_day"] == date(2026, 3, 28)  # 23:30 in Stockholm
    assert row["callback_made"] == key("2026-03-29T08:00:00Z", "ev-c")
    assert row["callback_reached"] == key("2026-03-29T09:00:00Z", "ev-d")
    # 23:10 UTC on 28 March is 00:10 on 29 March in Stockholm (summer time starts at 01:00 UTC).
    assert row["rejected"] == key("2026-03-28T23:10:00Z", "ev-e") and row["rejected_day"] == date(2026, 3, 29)
    assert row["answered"] is None and row["abandoned"] is None and row["callback_booked"] is None


def test_a_case_keeps_the_listing_of_its_earliest_contact_and_the_profession_of_its_earliest_assessment():
    raw = [
        {"type": "care.contact", "id": "ev-2", "at": "2026-03-29T07:00:00Z", "listed": True, "channel": "phone"},
        {"type": "care.contact", "id": "ev-1", "at": "2026-03-29T06:00:00Z", "listed": False, "channel": "phone"},
        {"type": "care.assessed", "id": "ev-4", "at": "2026-03-30T10:00:00Z", "profession": "doctor", "form": "phone"},
        {"type": "care.assessed", "id": "ev-3", "at": "2026-03-30T09:00:00Z", "profession": "nurse", "form": "phone"},
    ]
    events = [validate_event({"v": 1, "unit": UNIT, "case": "case-a1", **item}) for item in raw]
    _, cases = folded_rows(events)
    row = dict(zip(CASE_COLUMNS, cases[0]))
    assert (row["listed"], row["contact_day"]) == (False, date(2026, 3, 29))
    assert (row["profession"], row["assessed_day"]) == ("nurse", date(2026, 3, 30))
    assert row["excluded"] is None and row["cancelled"] is None
