"""Replay in worker processes gives exactly the document of a replay in one process (`workers=0`).

Big archives are replayed by workers that each own some units (`server/replay/shards.py`): the main
process routes every line to its unit's worker by reading the unit from the raw line. These tests cut
small archives into many blocks (BLOCK_BYTES patched) so that repeats, conflicts and odd lines fall in
other blocks than the events they repeat, and compare every document with the one-process one:
figures, rejected line numbers and reasons, duplicates.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
from datetime import datetime, time, timedelta, timezone
from types import MappingProxyType

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vardkoll.protocol import EventRejected, parse_event_line
from vardkoll.protocol.personal_number import raw_may_contain_personal_number
from vardkoll.server.replay import blocks as replay_blocks, shards as replay_shards
from vardkoll.server.metrics import MetricEngine, UnitConfig
from vardkoll.server.replay import replay_path, replay_stream

from conftest import FIXTURES

UNIT_A, UNIT_B, UNIT_C = "SE2321000016-VC01", "SE2321000016-VC02", "SE2321000131-VC03"
START = datetime(2026, 3, 27, 6, 0, tzinfo=timezone.utc)  # the days around the change to summer time
CET = timezone(timedelta(hours=1))


def line(event: dict) -> bytes:
    return orjson.dumps({"v": 1, **event})


def blocks_of(data: bytes) -> int:
    return len(list(replay_blocks.read_blocks(io.BytesIO(data))))


def same_in_workers(data: bytes, monkeypatch, block_bytes: int, workers=(1, 2, 3), **options) -> dict:
    """Replay `data` in one process and with each number of workers, cut in blocks of `block_bytes`;
    assert the documents are equal and return it."""
    monkeypatch.setattr(replay_blocks, "BLOCK_BYTES", block_bytes)
    assert blocks_of(data) > 2, "the archive must span several blocks, or the workers are not used"
    expected = replay_stream(io.BytesIO(data), workers=0, **options)
    for count in workers:
        assert replay_stream(io.BytesIO(data), workers=count, **options) == expected, f"{count} workers"
    return expected


def one_of_each(unit: str, prefix: str, at: datetime) -> list[dict]:
    """One event of every type for `unit`, a minute apart from `at`."""
    kinds = [
        {"type": "call.offered", "call": f"{prefix}-call-1", "queue": "rådgivning"},
        {"type": "call.answered", "call": f"{prefix}-call-1"},
        {"type": "call.offered", "call": f"{prefix}-call-2"},
        {"type": "call.callback_booked", "call": f"{prefix}-call-2", "slot": (at + timedelta(hours=2)).isoformat()},
        {"type": "call.callback_done", "call": f"{prefix}-call-2", "reached": False},
        {"type": "call.offered", "call": f"{prefix}-call-3"},
        {"type": "call.abandoned", "call": f"{prefix}-call-3"},
        {"type": "call.rejected", "call": f"{prefix}-call-4", "reason": "queue_full"},
        {"type": "care.contact", "case": f"{prefix}-case-1", "listed": True, "channel": "phone", "patient": f"{prefix}-pat-1"},
        {"type": "care.assessed", "case": f"{prefix}-case-1", "profession": "nurse", "form": "phone"},
        {"type": "care.contact", "case": f"{prefix}-case-2", "listed": True, "channel": "digital"},
        {"type": "care.excluded", "case": f"{prefix}-case-2", "reason": "patient_choice"},
        {"type": "care.contact", "case": f"{prefix}-case-3", "listed": False, "channel": "visit"},
        {"type": "care.cancelled", "case": f"{prefix}-case-3"},
        {
            "type": "listing.snapshot",
            "listed": 900,
            "named_doctor": 600,
            "doctors": [{"doctor": f"{prefix}-doc-1", "listed": 500}, {"doctor": f"{prefix}-doc-2", "listed": 400, "active": False}],
        },
        {
            "type": "visit.completed",
            "patient": f"{prefix}-pat-1",
            "practitioner": f"{prefix}-doc-1",
            "profession": "doctor",
            "listed": True,
            "fixed_doctor": f"{prefix}-doc-1",
            "form": "physical",
        },
        {
            "type": "visit.completed",
            "patient": f"{prefix}-pat-1",
            "practitioner": f"{prefix}-doc-2",
            "profession": "doctor",
            "listed": True,
            "fixed_doctor": f"{prefix}-doc-1",
        },
        {
            "type": "visit.completed",
            "patient": f"{prefix}-pat-1",
            "practitioner": f"{prefix}-doc-1",
            "profession": "doctor",
            "listed": True,
            "fixed_doctor": f"{prefix}-doc-1",
        },
    ]
    return [
        {"id": f"{prefix}-{index}", "unit": unit, "at": (at + timedelta(minutes=index)).astimezone(CET).isoformat(), "device": "pi-1", **kind}
        for index, kind in enumerate(kinds)
    ]


def filler(count: int, at: datetime) -> list[bytes]:
    """Calls of a third unit, to put blocks between an event and its repeat."""
    return [
        line({"id": f"fill-{at:%d%H%M}-{i}", "type": "call.offered", "unit": UNIT_C, "at": (at + timedelta(seconds=i)).isoformat(), "call": f"fill-call-{i}"})
        for i in range(count)
    ]


# --- (a) every fixture file at once -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixtures_archive() -> bytes:
    """Every fixture file in one archive: bad lines, blank lines, personal numbers and repeats included."""
    return b"".join(p.read_bytes() for p in sorted(FIXTURES.glob("*/*.jsonl"))) + b"no newline at the end"


@pytest.mark.parametrize("block_bytes", [300, 2_000, 20_000])
def test_all_fixtures_in_small_blocks(fixtures_archive, monkeypatch, block_bytes):
    document = same_in_workers(fixtures_archive, monkeypatch, block_bytes)
    assert document["results"] and document["duplicates"]
    assert any("personal identity number" in r["error"] for r in document["rejected"])
    assert document["rejected"][-1]["error"].startswith("not valid JSON")


def test_a_gzip_archive_in_workers(fixtures_archive, tmp_path, monkeypatch):
    packed = tmp_path / "all.jsonl.gz"
    packed.write_bytes(gzip.compress(fixtures_archive))
    monkeypatch.setattr(replay_blocks, "BLOCK_BYTES", 1_000)
    assert replay_path(packed, workers=2) == replay_path(packed, workers=0)


# --- (b) repeats of every event type in other blocks --------------------------------------------------


def test_repeats_of_every_type_in_later_blocks_are_duplicates(monkeypatch):
    events = one_of_each(UNIT_A, "a", START) + one_of_each(UNIT_B, "b", START + timedelta(hours=3))
    repeats = []
    for index, event in enumerate(events):
        again = dict(event)
        if index % 3 == 1:
            again["device"] = "pi-replacement"  # a re-sent event from a replacement device is the same event
        if index % 3 == 2:
            again["at"] = datetime.fromisoformat(event["at"]).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        repeats.append(again)
    data = (
        b"\n".join([*map(line, events), *filler(60, START), *map(line, repeats), *filler(60, START + timedelta(days=1)), *map(line, reversed(events))]) + b"\n"
    )
    document = same_in_workers(data, monkeypatch, 2_000)
    assert document["rejected"] == []
    assert document["duplicates"] == 2 * len(events)
    continuity = next(f for f in document["results"] if f["unit"] == UNIT_A and f["metric"] == "continuity")
    assert (continuity["numerator"], continuity["denominator"]) == (2, 3)  # each doctor visit counted once


# --- (c) an id used again by a different event -----------------------------------------------------------


def test_an_id_reused_in_a_later_block_is_rejected_with_its_line(monkeypatch):
    first = [
        {"id": "x-1", "type": "call.offered", "unit": UNIT_A, "at": "2026-03-27T08:00:00+01:00", "call": "c-conflict"},
        {"id": "x-2", "type": "call.answered", "unit": UNIT_A, "at": "2026-03-28T10:00:00+01:00", "call": "c-conflict"},
        {"id": "x-3", "type": "care.contact", "unit": UNIT_B, "at": "2026-03-27T08:00:00+01:00", "case": "k-conflict", "listed": True, "channel": "phone"},
    ]
    # Same ids, different events: had they counted, the call would have been answered the same day and
    # the case would be unlisted.
    later = [
        {"id": "x-2", "type": "call.answered", "unit": UNIT_A, "at": "2026-03-27T08:05:00+01:00", "call": "c-conflict"},
        {"id": "x-3", "type": "care.contact", "unit": UNIT_B, "at": "2026-03-27T07:00:00+01:00", "case": "k-conflict", "listed": False, "channel": "phone"},
        {"id": "x-2", "type": "call.answered", "unit": UNIT_B, "at": "2026-03-27T08:05:00+01:00", "call": "c-other-unit"},  # ids are per unit
    ]
    lines = [*map(line, first), *filler(80, START), *map(line, later), *filler(10, START + timedelta(days=1)), line(first[1])]
    document = same_in_workers(b"\n".join(lines), monkeypatch, 1_500)
    assert [r["line"] for r in document["rejected"]] == [84, 85]
    assert document["rejected"][0]["error"] == "event id 'x-2' was already used by a different event of this unit"
    assert document["duplicates"] == 1
    telephone = next(f for f in document["results"] if f["unit"] == UNIT_A and f["metric"] == "telephone")
    assert telephone["numerator"] == 0 and telephone["details"]["callback_later"] == 0


# --- routing ------------------------------------------------------------------------------------------

HOSTILE = [
    # a decoy "unit" key nested in an unknown field, before the real one
    b'{"v":1,"id":"h-1","type":"call.offered","meta":{"unit":"SE2321000016-VC02"},"unit":"SE2321000016-VC01",'
    b'"at":"2026-03-27T08:00:00+01:00","call":"c-hostile-1"}',
    # the real key written with an escape, so the only plain "unit" is the decoy
    b'{"v":1,"id":"h-2","type":"call.answered","meta":{"unit":"SE2321000016-VC02"},"\\u0075nit":"SE2321000016-VC01",'
    b'"at":"2026-03-27T08:01:00+01:00","call":"c-hostile-1"}',
    # only a nested "unit": rejected, whichever worker parses it
    b'{"v":1,"id":"h-3","type":"call.offered","meta":{"unit":"SE2321000016-VC02"},"at":"2026-03-27T08:00:00+01:00","call":"c-hostile-3"}',
    # "unit" as a value and as a key, with spaces around the colon
    b'{"v":1, "id":"h-4", "type":"call.offered", "queue":"unit", "unit" : "SE2321000016-VC02", "at":"2026-03-27T08:00:00+01:00", "call":"c-hostile-4"}',
    b"   ",
    b"{}",
    # an escape elsewhere in a valid event
    b'{"v":1,"id":"h-5","type":"call.offered","unit":"SE2321000016-VC01","at":"2026-03-27T08:00:00+01:00","call":"c-hostile-5","queue":"r\\u00e5d"}',
]


def test_units_of_lines_reads_one_plain_unit_per_line():
    plain = [line(e) for e in one_of_each(UNIT_A, "a", START)[:3]] + [line(one_of_each(UNIT_B, "b", START)[0])]
    assert replay_shards.units_of_lines(b"\n".join(plain)) == [UNIT_A.encode()] * 3 + [UNIT_B.encode()]
    for odd in HOSTILE:
        units = replay_shards.units_of_lines(b"\n".join([plain[0], odd, plain[1]]))
        if b"\\" in odd or odd.count(b'"unit"') != 1:
            assert units is None, odd
        else:  # one plain "unit" key: its value, whether or not the line is a valid event
            assert units == [UNIT_A.encode(), odd.split(b'"unit"')[1].split(b'"')[1], UNIT_A.encode()]


def _units_of_lines_as_before(block: bytes) -> list[bytes] | None:
    """units_of_lines as it was until 2026-12-07 (every "unit" marked in a copy of the block), to
    check its faster successor against."""
    if b"\\" in block or b"\x00" in block:
        return None
    skeleton = block.replace(b'"unit"', b"\x00").translate(None, bytes(b for b in range(256) if b not in (0, 10)))
    lines = skeleton.count(b"\n") + 1
    if len(skeleton) != 2 * lines - 1 or skeleton != b"\x00\n" * (lines - 1) + b"\x00":
        return None
    units = replay_shards._UNIT_VALUE.findall(block)
    return units if len(units) == lines else None


_ROUTING_PIECES = [
    b'"unit"',
    b'"unit":"SE2321000016-VC01"',
    b':"SE2321000131-VC03"',
    b'"',
    b"unit",
    b"\n",
    b"\\",
    b"\x00",
    b" ",
    b"{",
    b"}",
    b",",
    b'"unit"unit"',
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(_ROUTING_PIECES), st.sampled_from(HOSTILE)), max_size=12).map(b"".join))
def test_units_of_lines_reads_what_it_read_before(block):
    assert replay_shards.units_of_lines(block) == _units_of_lines_as_before(block)
    assert replay_shards.units_of_lines(block, block.split(b"\n")) == _units_of_lines_as_before(block)


def test_unit_of_line_agrees_with_the_parser():
    for odd in HOSTILE:
        try:
            expected: object = parse_event_line(odd).unit.encode()
        except EventRejected:
            expected = None
        found = replay_shards.unit_of_line(odd)
        if expected is not None:
            assert found == expected, odd
        elif b"\\" in odd or odd.count(b'"unit"') != 1:  # parsed, so its reason is known here
            assert found is None if not odd.strip() else isinstance(found, EventRejected), odd


def test_lines_that_fool_a_byte_scan_reach_the_right_worker(monkeypatch):
    good = [line(e) for e in one_of_each(UNIT_A, "a", START) + one_of_each(UNIT_B, "b", START)]
    data = b"\n".join([*good[:10], *HOSTILE, *good[10:20], *reversed(HOSTILE), *good[20:]])
    document = same_in_workers(data, monkeypatch, 700)
    lines = data.split(b"\n")
    assert {r["line"] for r in document["rejected"]} == {n for n, line in enumerate(lines, 1) if line in (HOSTILE[2], HOSTILE[5])}
    assert document["duplicates"] == 4  # the hostile events h-1, h-2, h-4 and h-5 come twice


def test_unit_settings_reach_the_workers(fixtures_archive, monkeypatch):
    helsinki = UnitConfig(
        time_zone="Europe/Helsinki",
        targets=MappingProxyType({"telephone": 0.5, "assessment": 0.99}),
        opening_hours=MappingProxyType({day: ((time(8), time(12)), (time(13), time(16))) for day in range(5)}),
        unreached_callback_counts=False,
    )
    configs = {UNIT_B: helsinki, UNIT_A: UnitConfig(time_zone="America/New_York")}
    same_in_workers(fixtures_archive, monkeypatch, 2_000, workers=(2,), config_of=lambda unit: configs.get(unit, UnitConfig()))


def test_period_and_moment_reach_the_workers(fixtures_archive, monkeypatch):
    from datetime import date

    same_in_workers(
        fixtures_archive,
        monkeypatch,
        2_000,
        workers=(2,),
        period_from=date(2026, 3, 2),
        period_to=date(2026, 3, 8),
        as_of=datetime(2026, 3, 4, 12, tzinfo=timezone.utc),
    )


def test_an_archive_without_a_valid_event(monkeypatch):
    data = b"\n".join([b"{broken", b"", b'{"v":1}', *HOSTILE[2:3]] * 40)
    document = same_in_workers(data, monkeypatch, 300)
    assert document["results"] == [] and len(document["rejected"]) == 120


def test_a_period_that_cannot_be_formed_is_refused_in_workers_too(fixtures_archive, monkeypatch):
    from datetime import date

    from vardkoll.server.replay import ReplayPeriodError

    monkeypatch.setattr(replay_blocks, "BLOCK_BYTES", 2_000)
    for workers in (0, 2):
        with pytest.raises(ReplayPeriodError):
            replay_stream(io.BytesIO(fixtures_archive), period_from=date(2027, 1, 1), workers=workers)


def test_a_worker_refuses_an_event_of_a_unit_it_does_not_own():
    with pytest.raises(replay_shards.MisroutedEvent):
        replay_shards.apply_lines(MetricEngine(), {UNIT_B}, line(one_of_each(UNIT_A, "a", START)[0]), [1], [])


def test_a_worker_that_dies_fails_the_replay():
    with pytest.raises(replay_shards.WorkerFailed):
        with replay_shards.UnitWorkers(2) as workers:
            workers.route(b"\n".join(line(e) for e in one_of_each(UNIT_A, "a", START) + one_of_each(UNIT_B, "b", START)), 1)
            os.kill(workers._processes[0].pid, signal.SIGKILL)
            workers.span()


# --- parsing a block at once --------------------------------------------------------------------------


def test_parse_lines_is_parse_event_line_on_each_line(fixtures_archive):
    lines = fixtures_archive.split(b"\n") + HOSTILE + [b"x" * 70_000, b'{"v":1,"note":"19121212-1212"}']
    parsed = replay_blocks.parse_lines(b"\n".join(lines), range(1, len(lines) + 1))
    events, rejected = [], []
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            try:
                events.append((number, parse_event_line(raw)))
            except EventRejected as exc:
                rejected.append((number, exc.reason))
    assert list(zip(parsed.event_lines, parsed.events)) == events
    assert parsed.rejected == rejected


PIECES = [
    "19121212-1212",
    "121212+1212",
    "1212121212",
    "201212121212",
    "19121212 1212",
    "121212",
    "1212",
    "-",
    "+",
    " ",
    "\t",
    "\\u0031",
    '"',
    ":",
    ",",
    "[",
    "]",
    "{",
    "}",
    ".",
    "e",
    "E",
    "5",
    "0",
    "a",
    "SE2321000016-VC01",
    "1.212121212e9",
    "12345678901234567890",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), min_size=1, max_size=6))
def test_the_personal_number_check_of_joined_lines_finds_whatever_a_line_has(texts):
    lines = [text.encode() for text in texts]
    if any(raw_may_contain_personal_number(raw) for raw in lines):
        assert raw_may_contain_personal_number(b"\n".join(lines))


# --- (d) random archives at random block boundaries ----------------------------------------------------


@st.composite
def archives(draw) -> list[bytes]:
    """Lines of events of two units, with ids drawn from a small pool (so repeats and conflicts are
    common), times written with several offsets, and a few lines that are not events at all."""
    lines = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.sampled_from([b"", b"{broken", b'{"v":1}', *HOSTILE])))
            continue
        template = draw(st.sampled_from(one_of_each(UNIT_A, "a", START)))
        unit = draw(st.sampled_from([UNIT_A, UNIT_B]))
        at = START + timedelta(minutes=draw(st.integers(0, 4 * 24 * 60)))
        offset = draw(st.sampled_from([timezone.utc, CET, timezone(timedelta(hours=2))]))
        event = {
            **template,
            "id": f"r-{draw(st.integers(0, 25))}",
            "unit": unit,
            "at": at.astimezone(offset).isoformat(),
            "device": draw(st.sampled_from(["pi-1", "pi-2"])),
        }
        for field in ("call", "case"):
            if field in event:
                event[field] = f"{field}-{draw(st.integers(0, 5))}"
        lines.append(line(event))
    return lines


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(archives(), st.integers(150, 1_500), st.sampled_from([1, 2, 3]))
def test_random_archives_at_random_block_boundaries(monkeypatch, lines, block_bytes, workers):
    data = b"\n".join(lines)
    monkeypatch.setattr(replay_blocks, "BLOCK_BYTES", block_bytes)
    expected = replay_stream(io.BytesIO(data), workers=0)
    assert replay_stream(io.BytesIO(data), workers=workers) == expected
