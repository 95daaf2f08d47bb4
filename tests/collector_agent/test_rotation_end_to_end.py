"""The key schedule end to end (issue 16): one month of a clinic's source events through a real collector,
real Mosquitto and the server, then the same month again after the key changed (five months later, the
same source ids, the same local days and times, the collector restarted in between).

- the figures of both months are the same, and equal `replay` of the same source events pseudonymised
  without any rotation: rotation changes no figure;
- no call or case pseudonym appears in both months, while patient and practitioner pseudonyms are the same;
- a case opened on the 30th and assessed on the 2nd of the next month keeps one pseudonym and is counted
  in the next month's assessment figure with its true wait, no orphan.
"""

from __future__ import annotations

import random
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import orjson
import pytest

from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig
from vardkoll.collector.connectors.base import SourceBatch, SourceEvent
from vardkoll.collector.pipeline import Pipeline
from vardkoll.collector.pseudonyms import Pseudonymiser, read_secret
from vardkoll.server.metrics import Period
from vardkoll.server.replay import replay_path
from vardkoll.server.services import build_consumer, build_services
from vardkoll.server.settings import ServerSettings

from support import wait_until
from .events import DEVICE, UNIT

TZ = ZoneInfo("Europe/Stockholm")
METRICS = ("telephone", "assessment", "continuity")
BEFORE, AFTER = date(2026, 3, 1), date(2026, 8, 1)  # 31-day months, further apart than a case lives (92 days)
ROTATED, STABLE = ("call", "case"), ("patient", "practitioner", "fixed_doctor")


@pytest.fixture
def server(database_url, mosquitto):
    services = build_services(ServerSettings(database_url=database_url, mqtt_url=mosquitto.url, dev=True), apply_migrations=True)
    consumer = build_consumer(services, client_id="test-server-rotation")
    consumer.start()
    assert consumer.connected.wait(10)
    yield services
    consumer.stop()


# -- one month of a clinic, as its source systems log it -----------------------------------------------------


def clinic_month(first: date) -> list[SourceEvent]:
    """The same month whatever `first` is: the same source ids, local days and clock times (seeded)."""
    rng = random.Random(16)
    events: list[SourceEvent] = []

    def at(day: int, hour: int, minute: int = 0) -> datetime:  # day 32 is the 1st of the next month
        local = first + timedelta(days=day - 1)
        return datetime(local.year, local.month, local.day, hour, tzinfo=TZ) + timedelta(minutes=minute)

    def add(type: str, when: datetime, refs: dict[str, tuple[str, str]], **fields: Any) -> None:
        raw = next(iter(refs.values()))[1] if refs else ""
        # The source's own line identity: the thing, what happened and when (as a log's position would).
        events.append(SourceEvent(type, when, f"{raw}|{type}|{when.isoformat()}", refs, fields))

    for day in range(1, 32):
        for n in range(rng.randint(3, 6)):
            call = {"call": ("call", f"q{day:02d}-{n}")}
            offered = at(day, 8, 7 * n)
            outcome = rng.random()
            if outcome >= 0.9:
                add("call.rejected", offered, call, reason="queue_full")
                continue
            add("call.offered", offered, call)
            if outcome < 0.5:
                add("call.answered", offered + timedelta(minutes=2), call)
            elif outcome < 0.8:
                add("call.callback_booked", offered + timedelta(minutes=1), call)
                add("call.callback_done", offered + timedelta(hours=3) if outcome < 0.7 else at(day + 1, 9), call, reached=True)
            else:
                add("call.abandoned", offered + timedelta(minutes=4), call)
        for n in range(rng.randint(1, 3)):
            case, patient = ("case", f"c{day:02d}-{n}"), ("patient", f"pat-{rng.randrange(12)}")
            add("care.contact", at(day, 9, 30 * n), {"case": case, "patient": patient}, listed=rng.random() < 0.9, channel="phone")
            outcome = rng.random()
            if outcome < 0.75:
                add("care.assessed", at(day + rng.choice([0, 0, 1, 2, 3, 4, 5]), 10, 30 * n), {"case": case}, profession="nurse", form="phone")
            elif outcome < 0.85:
                add("care.excluded", at(day + 1, 11), {"case": case}, reason="patient_choice")
            elif outcome < 0.9:
                add("care.cancelled", at(day, 15), {"case": case})
            else:  # a breach: assessed 8 to 20 days later (every case is closed by the end of the next month)
                add("care.assessed", at(day + rng.randint(8, 20), 14), {"case": case}, profession="doctor", form="physical")
        for n in range(rng.randint(1, 3)):
            patient = rng.randrange(12)
            refs = {"patient": ("patient", f"pat-{patient}"), "practitioner": ("practitioner", f"dr-{rng.randrange(4)}")}
            add("visit.completed", at(day, 13, 20 * n), {**refs, "fixed_doctor": ("practitioner", f"dr-{patient % 4}")}, profession="doctor", listed=True)
    # Across the month's end: opened on the 30th and 31st, assessed on the 2nd (3 days) and 5th (5 days);
    # a call of the 31st called back on the 1st.
    add("care.contact", at(30, 16), {"case": ("case", "boundary-ok"), "patient": ("patient", "pat-1")}, listed=True, channel="phone")
    add("care.assessed", at(33, 9), {"case": ("case", "boundary-ok")}, profession="doctor", form="physical")
    add("care.contact", at(31, 11), {"case": ("case", "boundary-late"), "patient": ("patient", "pat-2")}, listed=True, channel="phone")
    add("care.assessed", at(36, 9), {"case": ("case", "boundary-late")}, profession="nurse", form="phone")
    add("call.offered", at(31, 17), {"call": ("call", "q-boundary")})
    add("call.callback_booked", at(31, 17, 1), {"call": ("call", "q-boundary")})
    add("call.callback_done", at(32, 8, 30), {"call": ("call", "q-boundary")}, reached=True)
    return events


class ClinicSource:
    """The clinic's source system as the collector's connector reads it: one batch, then nothing new."""

    def __init__(self, events: list[SourceEvent]) -> None:
        self.events = events

    def poll(self) -> Iterator[SourceBatch]:
        events, self.events = self.events, []
        if events:
            yield SourceBatch(events)

    def close(self) -> None:
        pass


# -- the collector -------------------------------------------------------------------------------------------


def collector_config(state: Path, broker) -> CollectorConfig:
    return CollectorConfig(
        unit=UNIT,
        device=DEVICE,
        poll_interval_s=0.2,
        mqtt={"url": broker.url},
        outbox={"path": state / "outbox.db"},
        pseudonyms={"secret_file": state / "pseudonym.key"},  # the key schedule as shipped: on, Europe/Stockholm
        remote_config={"enabled": False},
        publisher={"start_jitter_s": 0.2, "resend_after_s": 2, "max_resend_after_s": 4, "heartbeat_interval_s": 1, "max_events_per_s": 5000},
    )


def run_month(config: CollectorConfig, events: list[SourceEvent], dump: Path) -> list[dict[str, Any]]:
    """Start a collector (a fresh process each month: the book must come from disk), read the month,
    send it, and return the events it made."""
    agent = Agent(config, clock_state=lambda: None)
    agent.connectors = {"journal": ClinicSource(events)}  # type: ignore[dict-item]  # duck-typed like a Connector
    report = agent.collect_once()
    assert report.added == len(events) and report.refused == 0, report
    with open(dump, "wb") as stream:
        agent.outbox.dump_jsonl(stream)
    thread = threading.Thread(target=agent.run, kwargs={"install_signal_handlers": False}, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: agent.outbox.stats().depth == 0, 60), agent.outbox.stats()
    finally:
        agent.stop()
        thread.join(10)
    return [orjson.loads(line) for line in dump.read_bytes().splitlines()]


def without_rotation(secret: bytes, events: list[SourceEvent], path: Path) -> Path:
    """The same source events pseudonymised with the secret alone (the collector before the key schedule)."""
    pipeline = Pipeline(Pseudonymiser(secret), UNIT, DEVICE)
    path.write_bytes(b"".join(orjson.dumps(pipeline.to_wire("journal", source)) + b"\n" for source in events))
    return path


def month(first: date) -> Period:
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(first, following - timedelta(days=1))


def replayed_figures(path: Path, period: Period) -> list[dict[str, Any]]:
    replayed = replay_path(path, period.start, period.end)
    assert replayed["rejected"] == [] and replayed["duplicates"] == 0
    return [result for result in replayed["results"] if result["metric"] in METRICS]


def pseudonyms(events: list[dict[str, Any]], fields: tuple[str, ...]) -> set[str]:
    return {event[field] for event in events for field in fields if event.get(field)}


def figure(services, metric: str, period: Period) -> dict[str, Any]:
    result = services.figures.figure(UNIT, metric, period)
    result.pop("definition_version"), result.pop("data")
    return result


def same_apart_from_dates(first: dict[str, Any], second: dict[str, Any]) -> bool:
    def undated(result: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in result.items() if key not in ("from", "to")}

    return undated(first) == undated(second)


def test_the_same_month_before_and_after_a_key_change_gives_the_same_figures_and_unlinked_calls_and_cases(tmp_path, server, mosquitto):
    config = collector_config(tmp_path / "state", mosquitto)
    before_source, after_source = clinic_month(BEFORE), clinic_month(AFTER)
    before = run_month(config, before_source, tmp_path / "before.jsonl")
    after = run_month(config, after_source, tmp_path / "after.jsonl")  # the collector restarted: same secret, same book

    # No call or case pseudonym in both months; patients and practitioners are the same people.
    assert pseudonyms(before, ROTATED) and pseudonyms(before, ROTATED).isdisjoint(pseudonyms(after, ROTATED))
    assert pseudonyms(before, ("patient",)) == pseudonyms(after, ("patient",))
    assert pseudonyms(before, ("practitioner", "fixed_doctor")) == pseudonyms(after, ("practitioner", "fixed_doctor"))
    assert not {event["id"] for event in before} & {event["id"] for event in after}  # both months stored, none deduplicated away

    # The boundary case: one pseudonym from the contact on the 30th to the assessment on the 2nd.
    for events, first in ((before, BEFORE), (after, AFTER)):
        contact = next(e for e in events if e["type"] == "care.contact" and e["at"].startswith(f"{first:%Y-%m}-30T16"))
        assessed = [e for e in events if e.get("case") == contact["case"]]
        assert [e["type"] for e in assessed] == ["care.contact", "care.assessed"]
        assert assessed[1]["at"].startswith(f"{month(first).end + timedelta(days=2):%Y-%m-%d}")

    # The server's figures are those of `replay` over what the collector sent.
    sent = tmp_path / "sent.jsonl"
    sent.write_bytes((tmp_path / "before.jsonl").read_bytes() + (tmp_path / "after.jsonl").read_bytes())
    following = {first: month(month(first).end + timedelta(days=1)) for first in (BEFORE, AFTER)}
    periods = (month(BEFORE), following[BEFORE], month(AFTER), following[AFTER])
    for period in periods:
        for expected in replayed_figures(sent, period):
            assert figure(server, expected["metric"], period) == expected, (expected["metric"], period)

    # Rotation changes no figure: they equal `replay` of the same source events pseudonymised without rotation,
    # each month as a collector before the key schedule would have sent it (read together, its reused call and
    # case ids would merge the months: what rotation prevents), and for continuity, whose patients are never
    # rotated, both months together.
    secret = read_secret(config.pseudonyms.secret_file)
    unrotated = {
        first: without_rotation(secret, source, tmp_path / f"unrotated-{first}.jsonl") for first, source in ((BEFORE, before_source), (AFTER, after_source))
    }
    both = without_rotation(secret, before_source + after_source, tmp_path / "unrotated-both.jsonl")
    for first in (BEFORE, AFTER):
        for period in (month(first), following[first]):
            for expected in replayed_figures(unrotated[first], period):
                if expected["metric"] != "continuity":
                    assert figure(server, expected["metric"], period) == expected, (expected["metric"], period)
            for expected in replayed_figures(both, period):
                if expected["metric"] == "continuity":
                    assert figure(server, "continuity", period) == expected, period
    for metric in ("telephone", "assessment"):
        assert same_apart_from_dates(figure(server, metric, month(BEFORE)), figure(server, metric, month(AFTER))), metric
        assert same_apart_from_dates(figure(server, metric, following[BEFORE]), figure(server, metric, following[AFTER])), metric
    continuity = [figure(server, "continuity", month(first)) for first in (BEFORE, AFTER)]
    assert [(c["numerator"], c["denominator"], c["share"]) for c in continuity[:1]] == [(c["numerator"], c["denominator"], c["share"]) for c in continuity[1:]]
    # The later month's 18-month window holds the earlier month's visits too: patients link across the key change.
    assert continuity[1]["details"]["eligible_patients"] > continuity[0]["details"]["eligible_patients"]

    # Worked by hand: the cases opened in the month and assessed in the next are counted there, with their
    # true waits; nothing is an orphan (a split case would be one).
    for first in (BEFORE, AFTER):
        next_month = figure(server, "assessment", following[first])
        source = before_source if first == BEFORE else after_source
        expected = _assessed_next_month(source, month(first).end)
        assert (next_month["numerator"], next_month["denominator"]) == expected
        assert next_month["details"]["orphans"] == 0 and next_month["details"]["invalid"] == 0


def _assessed_next_month(source: list[SourceEvent], month_end: date) -> tuple[int, int]:
    """(within 3 days, all) of the in-scope cases assessed after `month_end`, from the source events."""
    contacts = {e.refs["case"][1]: e for e in source if e.type == "care.contact" and e.fields["listed"]}
    closed = {e.refs["case"][1] for e in source if e.type in ("care.excluded", "care.cancelled")}
    waits = [
        (e.at.date() - contacts[e.refs["case"][1]].at.date()).days
        for e in source
        if e.type == "care.assessed" and e.at.date() > month_end and e.refs["case"][1] in contacts and e.refs["case"][1] not in closed
    ]
    assert len(waits) >= 2, "the boundary cases are in it"
    return sum(wait <= 3 for wait in waits), len(waits)
