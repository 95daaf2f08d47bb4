"""Clock discipline: events stamped by an untrustworthy device clock are held, corrected and released;
events stamped by the source system pass whatever the device clock says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import orjson

from vardkoll.collector.agent import Agent
from vardkoll.collector.clock import ClockGuard, ClockReading, HoldStamp
from vardkoll.collector.config import CollectorConfig
from vardkoll.collector.connectors.base import Connector, ConnectorConfig, SourceBatch, SourceEvent
from vardkoll.collector.outbox import Outbox
from vardkoll.firmware_bridge.bridge import OutboxSink

from .events import DEVICE, UNIT, offered
from .fakes import FakeClock, FakeMqttClient

FLOOR = date(2026, 11, 1)
REAL_NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc).timestamp()
STALE = datetime(2026, 1, 14, 9, 0, tzinfo=timezone.utc).timestamp()  # fake-hwclock from the image build
BOOT = "boot-a"


def reading(wall: float, boot: float = 100.0, ntp: bool | None = False, boot_id: str = BOOT) -> ClockReading:
    return ClockReading(wall, boot, boot_id, ntp)


# -- the rule ---------------------------------------------------------------------------------------------


def test_a_clock_before_the_floor_is_implausible_whatever_ntp_says():
    guard = ClockGuard(FLOOR)
    assert guard.observe(reading(0.0)).verdict == "implausible"  # 1970
    assert guard.observe(reading(STALE, ntp=None)).verdict == "implausible"
    assert "before 2026-11-01" in (guard.state.reason or "")


def test_a_step_while_ntp_is_not_synchronised_is_unvouched_until_ntp_says_synchronised():
    guard = ClockGuard(FLOOR, max_jump_s=120)
    assert guard.observe(reading(REAL_NOW, boot=100)).ok
    assert guard.observe(reading(REAL_NOW + 3600 + 10, boot=110, ntp=False)).verdict == "unvouched"
    assert guard.observe(reading(REAL_NOW + 3600 + 20, boot=120, ntp=False)).verdict == "unvouched"  # still
    assert guard.observe(reading(REAL_NOW + 3600 + 30, boot=130, ntp=True)).ok
    assert guard.jumps == 1


def test_a_step_where_ntp_cannot_be_asked_is_counted_but_only_the_floor_applies():
    guard = ClockGuard(FLOOR, max_jump_s=120)
    guard.observe(reading(REAL_NOW, boot=100, ntp=None))
    assert guard.observe(reading(REAL_NOW + 86_400, boot=101, ntp=None)).ok
    assert guard.jumps == 1 and guard.heartbeat()["jumps"] == 1


def test_ntp_stepping_a_stale_clock_to_the_right_time_makes_it_ok():
    guard = ClockGuard(FLOOR)
    assert not guard.observe(reading(STALE, boot=20, ntp=False)).ok
    state = guard.observe(reading(REAL_NOW, boot=30, ntp=True))
    assert state.ok and guard.heartbeat() == {"ntp_synced": True, "state": "ok", "jumps": 1, "floor": "2026-11-01"}


# -- the outbox -------------------------------------------------------------------------------------------


def test_held_events_are_not_published_until_released_with_their_time_corrected(tmp_path):
    box = Outbox(tmp_path / "o.db", unit=UNIT, device=DEVICE)
    stale_event = offered(1) | {"at": "2026-01-14T10:00:00+01:00"}
    box.add([stale_event, offered(2)], held_ids=[stale_event["id"]], hold=HoldStamp(BOOT, offset_s=STALE - 50))
    assert [row.event_id for row in box.batch_after(0, 10)] == ["ev-0000002"]
    assert box.stats().held == 1 and box.stats().as_heartbeat()["held"] == 1

    step = REAL_NOW - STALE
    report = box.release_held(BOOT, offset_s=STALE - 50 + step)
    assert (report.released, report.stranded) == (1, 0)
    rows = box.batch_after(0, 10)
    assert [row.event_id for row in rows] == ["ev-0000002", "ev-0000001"]  # re-queued behind what was waiting
    corrected = datetime.fromisoformat(orjson.loads(rows[1].body)["at"])
    assert corrected == datetime.fromisoformat("2026-01-14T10:00:00+01:00") + timedelta(seconds=step)
    assert corrected.utcoffset() == timedelta(hours=1)
    assert box.stats().held == 0 and box.stats().released == 1


def test_held_events_from_an_earlier_boot_cannot_be_corrected_and_stay_held(tmp_path):
    box = Outbox(tmp_path / "o.db", unit=UNIT, device=DEVICE)
    box.add([offered(1)], held_ids=["ev-0000001"], hold=HoldStamp("boot-before", offset_s=0.0))
    report = box.release_held(BOOT, offset_s=REAL_NOW)
    assert (report.released, report.stranded) == (0, 1)
    assert box.batch_after(0, 10) == [] and box.stats().held == 1
    assert len(box.batch_after(0, 10, include_held=True)) == 1  # dump-outbox still shows it


# -- the agent --------------------------------------------------------------------------------------------


class ButtonConnector(Connector):
    """A source whose events carry no time of their own: stamped by this device's clock."""

    Config = ConnectorConfig

    def __init__(self, wall: "FakeReader") -> None:
        self.wall, self.pending = wall, []
        self.counters = {}

    def press(self, key: str, clock: str = "device", at: datetime | None = None) -> None:
        when = at or datetime.fromtimestamp(self.wall.now.wall_s, timezone.utc)
        self.pending.append(SourceEvent("care.contact", when, key, refs={"case": ("case", key)}, fields={"listed": True, "channel": "visit"}, clock=clock))

    def poll(self) -> Iterator[SourceBatch]:
        if self.pending:
            yield SourceBatch(self.pending)
            self.pending = []


class FakeReader:
    def __init__(self, first: ClockReading) -> None:
        self.now = first

    def __call__(self) -> ClockReading:
        return self.now


def make_agent(tmp_path, reader: FakeReader) -> tuple[Agent, ButtonConnector, FakeMqttClient, FakeClock]:
    config = CollectorConfig(
        unit=UNIT,
        device=DEVICE,
        outbox={"path": tmp_path / "outbox.db"},
        pseudonyms={"secret_file": tmp_path / "pseudonym.key"},
        publisher={"start_jitter_s": 0, "max_events_per_s": 1000},
        clock={"floor": "2026-11-01"},
    )
    client, clock = FakeMqttClient(), FakeClock()
    agent = Agent(config, client=client, clock=clock, clock_reader=reader)
    buttons = ButtonConnector(reader)
    agent.connectors = {"buttons": buttons}
    return agent, buttons, client, clock


def sent_events(client: FakeMqttClient) -> list[dict]:
    return [event for batch in client.batches() for event in batch.json()["events"]]


def test_a_pi_booted_with_a_stale_clock_holds_its_own_stamps_then_sends_them_corrected(tmp_path):
    reader = FakeReader(reading(STALE, boot=20, ntp=False))
    agent, buttons, client, clock = make_agent(tmp_path, reader)
    client.connect()
    buttons.press("k1")  # stamped 2026-01-14 by the stale clock
    buttons.press("k2", clock="source", at=datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc))  # the source's own time
    agent.collect_once()
    clock.advance(1)
    agent.publisher.tick()
    assert [e["type"] for e in sent_events(client)] == ["care.contact"] and sent_events(client)[0]["at"].startswith("2026-11-23T07:00")
    beat = agent.publisher.heartbeat()
    assert beat["clock"]["state"] == "implausible" and beat["outbox"]["held"] == 1

    reader.now = reading(REAL_NOW + 10, boot=30, ntp=True)  # NTP stepped the clock, 10 s after the press
    agent.check_clock()
    clock.advance(1)
    agent.publisher.tick()
    released = sent_events(client)[1]
    assert datetime.fromisoformat(released["at"]) == datetime.fromtimestamp(REAL_NOW, timezone.utc)  # the press's true time
    beat = agent.publisher.heartbeat()
    assert beat["clock"]["state"] == "ok" and beat["outbox"]["held"] == 0


def test_with_a_sane_clock_device_stamped_events_go_at_once(tmp_path):
    reader = FakeReader(reading(REAL_NOW, ntp=True))
    agent, buttons, client, clock = make_agent(tmp_path, reader)
    client.connect()
    buttons.press("k1")
    agent.collect_once()
    clock.advance(1)
    agent.publisher.tick()
    assert len(sent_events(client)) == 1 and agent.outbox.stats().held == 0


def test_the_bridge_sink_holds_presses_while_the_agent_says_the_clock_is_wrong(tmp_path):
    reader = FakeReader(reading(0.0, boot=5, ntp=False))  # 1970
    agent, _, _, _ = make_agent(tmp_path, reader)
    sink = OutboxSink(agent.outbox, hold=agent.device_clock_hold)
    sink.add(offered(1) | {"device": DEVICE})
    assert agent.outbox.stats().held == 1
    reader.now = reading(REAL_NOW, boot=6, ntp=True)
    sink.add(offered(2) | {"device": DEVICE})  # asking again sees the clock ok and releases the first
    assert agent.outbox.stats().held == 0 and agent.outbox.stats().depth == 2


def test_outbox_stats_prints_every_counter_the_docs_list(tmp_path):
    """`vardkoll collector outbox-stats` prints the counters docs/collector.md names, duplicates and released included."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    box = Outbox(tmp_path / "o.db", unit=UNIT, device=DEVICE)
    box.add([offered(1), offered(1), offered(2)])  # one duplicate
    box.add([offered(3)], held_ids=["ev-0000003"], hold=HoldStamp(BOOT, offset_s=STALE - 50))
    box.release_held(BOOT, offset_s=REAL_NOW - 50)  # one released
    box.close()
    config = tmp_path / "collector.toml"
    config.write_text(
        f'unit = "{UNIT}"\ndevice = "{DEVICE}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\nusername = "u"\npassword = "p"\n'
        f'[outbox]\npath = "{tmp_path / "o.db"}"\n[pseudonyms]\nsecret_file = "{tmp_path / "key"}"\n'
    )
    vardkoll = str(Path(sys.executable).with_name("vardkoll"))
    done = subprocess.run([vardkoll, "collector", "outbox-stats", "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = orjson.loads(done.stdout)
    assert (printed["duplicates"], printed["released"], printed["added"], printed["depth"], printed["held"]) == (1, 1, 3, 3, 0)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "collector.md").read_text(encoding="utf-8")
    counters = docs[docs.index("Counters, all persisted:") : docs.index("plus refusal and rejection reasons")]
    documented = set(re.findall(r"`(\w+)`", counters))
    assert len(documented) >= 10 and documented | {"refused_reasons", "rejected_reasons"} <= set(printed), documented - set(printed)
