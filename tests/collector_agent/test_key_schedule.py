"""The key schedule for call and case pseudonyms: one period per thing for its whole life, wired into the
collector's pipeline (issue 16)."""

from __future__ import annotations

import sqlite3
import stat
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig
from vardkoll.collector.connectors.base import SourceBatch, SourceEvent
from vardkoll.collector.key_schedule import PeriodBook, period_key, period_of
from vardkoll.collector.lookup import LookupMap
from vardkoll.collector.outbox import Outbox
from vardkoll.collector.pipeline import Pipeline
from vardkoll.collector.pseudonyms import FirmwareBridgePseudonymiser, Pseudonymiser, read_secret
from vardkoll.collector.secret_export import export_secret, import_secret

from .events import DEVICE, UNIT
from .fakes import FakeMqttClient

TZ = ZoneInfo("Europe/Stockholm")
SECRET = b"k" * 32


def _book() -> PeriodBook:
    return PeriodBook(sqlite3.connect(":memory:"), SECRET, TZ)


def test_a_case_opened_on_the_31st_keeps_its_period_when_assessed_on_the_2nd():
    book = _book()
    assert book.period_for("case", "ticket-17", datetime(2027, 1, 31, 16, tzinfo=TZ)) == "2027-01"
    assert book.period_for("case", "ticket-17", datetime(2027, 2, 2, 9, tzinfo=TZ)) == "2027-01"


def test_a_callback_read_before_its_offer_still_shares_one_period():
    book = _book()
    assert book.period_for("call", "q-1", datetime(2027, 3, 1, 8, tzinfo=TZ)) == "2027-03"
    assert book.period_for("call", "q-1", datetime(2027, 2, 28, 17, tzinfo=TZ)) == "2027-03"


def test_a_reused_source_id_after_its_life_is_a_new_thing_with_its_own_period():
    book = _book()
    assert book.period_for("case", "ticket-17", datetime(2027, 1, 5, tzinfo=TZ)) == "2027-01"
    assert book.period_for("case", "ticket-17", datetime(2027, 6, 5, tzinfo=TZ)) == "2027-06"
    assert book.period_for("case", "ticket-17", datetime(2027, 1, 7, tzinfo=TZ)) == "2027-01"


def test_the_period_is_the_local_month():
    assert period_of(datetime.fromisoformat("2027-01-31T23:30:00+00:00"), TZ) == "2027-02"


def test_patients_are_not_rotated():
    with pytest.raises(ValueError, match="not rotated"):
        _book().period_for("patient", "p", datetime(2027, 1, 1, tzinfo=TZ))


@given(st.lists(st.integers(min_value=0, max_value=60 * 24 * 20), min_size=1, max_size=8))
def test_every_event_of_one_thing_within_its_life_gets_the_first_seen_period(minutes):
    book = _book()
    start = datetime(2027, 1, 25, tzinfo=TZ)
    periods = {book.period_for("case", "c", start + timedelta(minutes=m)) for m in minutes}
    assert periods == {period_of(start + timedelta(minutes=minutes[0]), TZ)}


@given(st.sampled_from(["2027-01", "2027-02", "2028-01"]), st.sampled_from(["2027-03", "2026-12"]))
def test_period_keys_differ_between_periods_and_repeat_within_one(a, b):
    assert period_key(SECRET, a) == period_key(SECRET, a)
    assert period_key(SECRET, a) != period_key(SECRET, b)


# -- wired into the pipeline ------------------------------------------------------------------------------


def _pipeline(folder: Path, secret: bytes = SECRET, lookup: LookupMap | None = None, **book) -> Pipeline:
    return Pipeline(Pseudonymiser(secret), UNIT, DEVICE, lookup, PeriodBook.open(folder / "pseudonym-periods.db", secret, TZ, **book))


def _contact(case: str, patient: str, at: datetime) -> SourceEvent:
    refs = {"case": ("case", case), "patient": ("patient", patient)}
    return SourceEvent("care.contact", at, f"{case}@{at.isoformat()}", refs, {"listed": True, "channel": "phone"})


def _assessed(case: str, at: datetime) -> SourceEvent:
    return SourceEvent("care.assessed", at, f"{case}@{at.isoformat()}", {"case": ("case", case)}, {"profession": "nurse", "form": "phone"})


def _offered(call: str, at: datetime) -> SourceEvent:
    return SourceEvent("call.offered", at, f"{call}@{at.isoformat()}", {"call": ("call", call)})


def _visit(patient: str, doctor: str, at: datetime) -> SourceEvent:
    refs = {"patient": ("patient", patient), "practitioner": ("practitioner", doctor), "fixed_doctor": ("practitioner", doctor)}
    return SourceEvent("visit.completed", at, f"{patient}@{at.isoformat()}", refs, {"profession": "doctor", "listed": True})


def test_the_same_source_ids_in_two_periods_give_unrelated_call_and_case_pseudonyms_but_one_patient(tmp_path):
    pipeline = _pipeline(tmp_path)
    march, august = datetime(2027, 3, 10, 9, tzinfo=TZ), datetime(2027, 8, 10, 9, tzinfo=TZ)
    first = [pipeline.to_wire("src", s) for s in (_contact("A-1", "p-1", march), _offered("q-1", march), _visit("p-1", "d-1", march))]
    again = [pipeline.to_wire("src", s) for s in (_contact("A-1", "p-1", august), _offered("q-1", august), _visit("p-1", "d-1", august))]
    assert first[0]["case"] != again[0]["case"] and first[1]["call"] != again[1]["call"]
    assert first[0]["patient"] == again[0]["patient"] == first[2]["patient"] == again[2]["patient"]
    assert first[2]["practitioner"] == again[2]["practitioner"]
    assert first[0]["case"] == Pseudonymiser(SECRET).for_period("2027-03").pseudonym("case", "A-1")
    assert first[0]["patient"] == Pseudonymiser(SECRET).pseudonym("patient", "p-1")  # the secret's own key


def test_a_case_opened_on_30_march_and_assessed_on_2_april_keeps_one_pseudonym(tmp_path):
    pipeline = _pipeline(tmp_path)
    contact = pipeline.to_wire("src", _contact("A-7", "p-1", datetime(2027, 3, 30, 16, tzinfo=TZ)))
    assessed = pipeline.to_wire("src", _assessed("A-7", datetime(2027, 4, 2, 9, tzinfo=TZ)))
    fresh = pipeline.to_wire("src", _contact("A-8", "p-2", datetime(2027, 4, 2, 9, tzinfo=TZ)))
    assert contact["case"] == assessed["case"] == Pseudonymiser(SECRET).for_period("2027-03").pseudonym("case", "A-7")
    assert fresh["case"] == Pseudonymiser(SECRET).for_period("2027-04").pseudonym("case", "A-8")


def test_event_ids_do_not_rotate_so_a_re_read_counts_once(tmp_path):
    at = datetime(2027, 3, 30, 16, tzinfo=TZ)
    rotated = _pipeline(tmp_path).to_wire("src", _contact("A-7", "p-1", at))
    plain = Pipeline(Pseudonymiser(SECRET), UNIT, DEVICE).to_wire("src", _contact("A-7", "p-1", at))
    assert rotated["id"] == plain["id"] and rotated["case"] != plain["case"]


def test_after_a_restart_a_re_read_gives_the_same_events(tmp_path):
    """The book is on disk once flushed: a collector restarted mid-case, re-reading its source, sends what it sent."""
    reads = [_contact("A-7", "p-1", datetime(2027, 3, 30, 16, tzinfo=TZ)), _assessed("A-7", datetime(2027, 4, 2, 9, tzinfo=TZ))]
    first = _pipeline(tmp_path)
    sent = [first.to_wire("src", s) for s in reads]
    first.flush()
    # the restarted device reads the assessment first (its checkpoint was past the contact)
    restarted = _pipeline(tmp_path)
    assert [restarted.to_wire("src", s) for s in reversed(reads)] == list(reversed(sent))


def test_a_replacement_device_with_the_imported_secret_makes_the_same_pseudonyms(tmp_path):
    secret = bytes(range(32))
    imported = import_secret(export_secret(secret, "korrekt häst batteri", cost=(2**10, 8, 1)), "korrekt häst batteri").secret
    reads = [
        _contact("A-7", "p-1", datetime(2027, 3, 30, 16, tzinfo=TZ)),
        _assessed("A-7", datetime(2027, 4, 2, 9, tzinfo=TZ)),
        _offered("q-1", datetime(2027, 4, 3, tzinfo=TZ)),
    ]
    (tmp_path / "old").mkdir(), (tmp_path / "new").mkdir()
    old_device, new_device = _pipeline(tmp_path / "old", secret), _pipeline(tmp_path / "new", imported)
    old = [old_device.to_wire("src", s) for s in reads]
    new = [new_device.to_wire("src", s) for s in reads]  # an empty book, the source read from its start
    assert new == old


def test_the_lookup_map_answers_the_rotated_pseudonym_of_each_period(tmp_path):
    lookup = LookupMap(tmp_path / "lookup.db")
    pipeline = _pipeline(tmp_path, lookup=lookup)
    july = pipeline.to_wire("bokning", _contact("BOK-4711", "p-1", datetime(2026, 7, 1, 9, tzinfo=TZ)))["case"]
    lookup.flush(datetime(2026, 7, 1, 10, tzinfo=TZ))
    assert [r.reference for r in lookup.lookup(july, datetime(2026, 7, 2, tzinfo=TZ))] == ["BOK-4711"]
    november = pipeline.to_wire("bokning", _contact("BOK-4711", "p-1", datetime(2026, 11, 20, 9, tzinfo=TZ)))["case"]
    now = datetime(2026, 11, 21, tzinfo=TZ)
    lookup.flush(now)
    assert july != november
    assert [r.reference for r in lookup.lookup(november, now)] == ["BOK-4711"]
    assert lookup.lookup(july, now) == []  # seen more than the lookup's 60 days ago: forgotten, as before


def test_an_upgraded_device_keeps_the_old_key_for_what_it_sent_before(tmp_path):
    upgrade = datetime(2027, 3, 31, 12, tzinfo=TZ)
    lookup = LookupMap(tmp_path / "lookup.db")
    before = Pipeline(Pseudonymiser(SECRET), UNIT, DEVICE, lookup)  # the collector before the key schedule
    sent = before.to_wire("src", _contact("A-7", "p-1", datetime(2027, 3, 30, 16, tzinfo=TZ)))
    lookup.flush(upgrade)
    after = _pipeline(tmp_path, lookup=lookup, upgraded=True, now=upgrade.timestamp)
    assessed = after.to_wire("src", _assessed("A-7", datetime(2027, 4, 2, 9, tzinfo=TZ)))
    re_read = after.to_wire("src", _contact("A-7", "p-1", datetime(2027, 3, 30, 16, tzinfo=TZ)))
    new_case = after.to_wire("src", _contact("A-9", "p-2", datetime(2027, 4, 2, 9, tzinfo=TZ)))
    assert assessed["case"] == re_read["case"] == sent["case"] == Pseudonymiser(SECRET).pseudonym("case", "A-7")
    assert new_case["case"] == Pseudonymiser(SECRET).for_period("2027-04").pseudonym("case", "A-9")
    assert re_read == sent


def test_a_new_book_on_a_fresh_device_has_no_legacy(tmp_path):
    book = PeriodBook.open(tmp_path / "p.db", SECRET, TZ, upgraded=False)
    assert book.legacy_before_s is None
    assert book.period_for("case", "A-1", datetime(2020, 1, 1, tzinfo=TZ)) == "2020-01"


def test_the_book_keeps_no_source_id_and_is_private(tmp_path):
    pipeline = _pipeline(tmp_path)
    pipeline.to_wire("src", _contact("BOK-4711", "p-1", datetime(2027, 3, 30, 16, tzinfo=TZ)))
    pipeline.flush()
    path = tmp_path / "pseudonym-periods.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("pseudonym-periods.db*"))
    assert b"BOK-4711" not in stored and b"p-1" not in stored


def test_old_book_rows_are_pruned(tmp_path):
    book = PeriodBook.open(tmp_path / "p.db", SECRET, TZ)
    book.period_for("call", "q-1", datetime(2026, 1, 1, tzinfo=TZ))
    book.period_for("call", "q-2", datetime(2027, 1, 1, tzinfo=TZ))
    assert book.prune(datetime(2027, 3, 1, tzinfo=TZ)) == 1


def test_the_agent_writes_the_book_before_the_outbox_and_opens_it_by_default(tmp_path):
    config = CollectorConfig(unit=UNIT, device=DEVICE, outbox={"path": tmp_path / "outbox.db"}, pseudonyms={"secret_file": tmp_path / "pseudonym.key"})
    agent = Agent(config, client=FakeMqttClient(), clock_state=lambda: None)
    assert agent.pipeline.periods is not None and config.periods_file == tmp_path / "pseudonym-periods.db"
    agent.connectors = {"src": _Scripted([_contact("A-7", "p-1", datetime(2027, 3, 30, 16, tzinfo=TZ))])}
    assert agent.collect_once().added == 1
    rows = sqlite3.connect(config.periods_file).execute("SELECT period FROM pseudonym_periods").fetchall()
    assert rows == [("2027-03",)]
    agent.outbox.close()


def test_a_device_upgraded_from_before_the_schedule_is_recognised(tmp_path):
    config = CollectorConfig(unit=UNIT, device=DEVICE, outbox={"path": tmp_path / "outbox.db"}, pseudonyms={"secret_file": tmp_path / "pseudonym.key"})
    Outbox(config.outbox.path, unit=UNIT, device=DEVICE).close()  # the outbox of the collector before the upgrade
    agent = Agent(config, client=FakeMqttClient(), clock_state=lambda: None)
    assert agent.pipeline.periods is not None and agent.pipeline.periods.legacy_before_s is not None
    agent.outbox.close()


class _Scripted:
    def __init__(self, events: list[SourceEvent]) -> None:
        self.events = events

    def poll(self):
        events, self.events = self.events, []
        if events:
            yield SourceBatch(events)

    def close(self) -> None:
        pass


def test_an_upgraded_device_without_a_lookup_map_keeps_the_old_key_for_a_life_after_the_upgrade(tmp_path):
    """The firmware bridge keeps no lookup map: a ticket drawn before the upgrade and assessed after it must
    stay one case, so for a case's life after the upgrade new things keep the old key too."""
    upgrade = datetime(2027, 3, 31, 12, tzinfo=TZ)
    book = PeriodBook.open(tmp_path / "p.db", SECRET, TZ, upgraded=True, now=upgrade.timestamp)
    assert book.period_for("case", "ticket-17", upgrade + timedelta(days=2)) == "legacy"
    assert book.period_for("case", "ticket-18", upgrade + timedelta(days=93)) == "2027-07"
    assert book.period_for("call", "q-1", upgrade + timedelta(days=32)) == "2027-05"


def test_period_keys_and_rotated_pseudonyms_are_pinned():
    """The derivation documented in docs/privacy.md; a change would split every case open at the upgrade
    and make a replacement device's pseudonyms differ from the old one's."""
    import hashlib
    import hmac

    assert period_key(SECRET, "2027-03") == hmac.new(SECRET, b"vardkoll period key v1\x1f2027-03", hashlib.sha256).digest()
    assert period_key(SECRET, "2027-03").hex() == "ce8fc1b05ca73c0276b4a04c3b4f316b923f627a91af9dccb3f914bfed900e24"
    assert Pseudonymiser(SECRET).for_period("2027-03").pseudonym("case", "A-1") == "bmagxijgrkfvzautxfvhih"
    assert FirmwareBridgePseudonymiser(SECRET).for_period("2027-03").pseudonym("case", "u\x1fd\x1f17") == "kEwkdkmsFjfucftswsahryDCf"


def test_a_crash_before_the_outbox_stores_a_batch_leaves_its_periods_on_disk(tmp_path, monkeypatch):
    """The book is written first: a batch lost before the outbox took it is read again with the periods it had."""
    config = CollectorConfig(unit=UNIT, device=DEVICE, outbox={"path": tmp_path / "outbox.db"}, pseudonyms={"secret_file": tmp_path / "pseudonym.key"})
    agent = Agent(config, client=FakeMqttClient(), clock_state=lambda: None)
    agent.connectors = {"src": _Scripted([_contact("A-7", "p-1", datetime(2027, 3, 31, 16, tzinfo=TZ))])}

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(agent.outbox, "add", crash)
    agent.collect_once()
    assert sqlite3.connect(config.periods_file).execute("SELECT period FROM pseudonym_periods").fetchall() == [("2027-03",)]
    agent.outbox.close()
    # After the restart the assessment of April is read before the contact is read again: March's key.
    secret = read_secret(config.pseudonyms.secret_file)
    again = Pipeline(Pseudonymiser(secret), UNIT, DEVICE, None, PeriodBook.open(config.periods_file, secret, TZ))
    assessed = again.to_wire("src", _assessed("A-7", datetime(2027, 4, 2, 9, tzinfo=TZ)))
    assert assessed["case"] == Pseudonymiser(secret).for_period("2027-03").pseudonym("case", "A-7")
