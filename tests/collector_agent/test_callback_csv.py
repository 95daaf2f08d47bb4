"""The callback-export connector: rows become call events, bad rows are reported, files are read once."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest

from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig, ConnectorEntry
from vardkoll.collector.connectors import REGISTRY, UnknownConnector, build_connector
from vardkoll.collector.connectors.base import ConnectorContext
from vardkoll.collector.connectors.callback_csv import CallbackCsvConnector

from .events import DEVICE, UNIT
from .fakes import FakeMqttClient

FIXTURE = Path(__file__).parent / "fixtures" / "callback-export-2026-03-02.csv"
FAKE_PHONES = [f"070-17406{n:02d}" for n in range(5, 18)]
FAKE_NAMES = [
    "Testsson",
    "Exempelsson",
    "Provsson",
    "Demosson",
    "Fiktivsson",
    "Testdotter",
    "Bertil",
    "Cecilia",
    "Dag Fel",
    "Eva Fel",
    "Frans",
    "Gun Fel",
    "Hugo",
]
SOURCE_IDS = [f"TQ-10{n:02d}" for n in range(1, 14)]
# The fixture's export has a slot column and a separate queue-status column besides the defaults.
FIXTURE_COLUMNS = {"callback_slot": "callback_slot", "queue_status": "queue_status"}


def connector(folder: Path, checkpoints: dict | None = None, now: float | None = None, **settings):
    stored = checkpoints if checkpoints is not None else {}
    context = ConnectorContext("callback_csv", stored.get, (lambda: now) if now is not None else lambda: 4e9)
    return build_connector("callback_csv", {"folder": str(folder), "settle_s": 0, **settings}, context)


@pytest.fixture
def export_folder(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / FIXTURE.name)
    return folder


def test_the_registry_names_the_connector_and_refuses_unknown_types(tmp_path):
    assert REGISTRY["callback_csv"] is CallbackCsvConnector
    with pytest.raises(UnknownConnector, match="known: .*callback_csv"):
        build_connector("teleq_magic", {}, ConnectorContext("x", {}.get, lambda: 0.0))


def test_a_config_typo_is_an_error_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match="delimeter"):
        connector(tmp_path, delimeter=",")


def test_each_row_becomes_the_call_events_it_describes(export_folder):
    (batch,) = list(connector(export_folder, columns=FIXTURE_COLUMNS).poll())
    by_call = {}
    for event in batch.events:
        by_call.setdefault(event.source_key, []).append(event.type)
    assert by_call["TQ-1001"] == ["call.offered", "call.callback_booked", "call.callback_done"]
    assert by_call["TQ-1004"] == ["call.offered", "call.callback_booked"]
    assert by_call["TQ-1005"] == ["call.offered", "call.answered"]
    assert by_call["TQ-1006"] == ["call.offered", "call.abandoned"]
    assert by_call["TQ-1007"] == ["call.rejected"] and by_call["TQ-1008"] == ["call.rejected"]
    rejected = {e.source_key: e.fields["reason"] for e in batch.events if e.type == "call.rejected"}
    assert rejected == {"TQ-1007": "queue_full", "TQ-1008": "closed"}
    done = {e.source_key: e.fields["reached"] for e in batch.events if e.type == "call.callback_done"}
    assert done == {"TQ-1001": True, "TQ-1002": False, "TQ-1003": True, "TQ-1013": True}
    assert len(batch.events) == 20


def test_local_times_get_the_configured_zone_and_the_slot_is_kept(export_folder):
    (batch,) = list(connector(export_folder, columns=FIXTURE_COLUMNS).poll())
    first = batch.events[0]
    assert first.at.isoformat() == "2026-03-02T07:58:12+01:00"
    booked = next(e for e in batch.events if e.type == "call.callback_booked")
    assert booked.fields["slot"] == "2026-03-02T09:30:00+01:00"


def test_bad_rows_are_counted_and_reported_by_line_without_values_and_the_rest_is_read(export_folder):
    source = connector(export_folder, columns=FIXTURE_COLUMNS)
    (batch,) = list(source.poll())
    assert source.counters == {"files": 1, "rows": 9, "bad_rows": 4}
    assert [p.split(": ", 2)[1] for p in batch.problems] == ["line 10", "line 11", "line 12", "line 13"]
    assert "not a time" in batch.problems[0] and "outcomes" in batch.problems[1]
    assert "'call_id' is empty" in batch.problems[2] and "'callback_made' is empty" in batch.problems[3]
    text = " ".join(batch.problems)
    assert not any(value in text for value in FAKE_PHONES + FAKE_NAMES + ["igår", "okänt", "TQ-10"])


def test_a_file_read_once_is_not_read_again_but_a_changed_file_is(export_folder):
    checkpoints: dict = {}
    source = connector(export_folder, checkpoints, columns=FIXTURE_COLUMNS)
    (batch,) = list(source.poll())
    checkpoints[batch.checkpoint.key] = batch.checkpoint.value
    assert list(source.poll()) == []
    with open(export_folder / FIXTURE.name, "a") as handle:
        handle.write("TQ-1014;2026-03-02 08:20:00;070-1740618;Ida Test;;;;;besvarad;\n")
    (again,) = list(source.poll())
    assert len(again.events) == 22


def test_a_file_still_being_written_waits_until_it_settles(export_folder):
    fresh = (export_folder / FIXTURE.name).stat().st_mtime
    assert list(connector(export_folder, now=fresh + 1, settle_s=10).poll()) == []
    assert len(list(connector(export_folder, now=fresh + 11, settle_s=10).poll())) == 1


def test_a_file_missing_a_mapped_column_is_reported_once_and_not_checkpointed(tmp_path):
    (tmp_path / "odd.csv").write_text("id;when\n1;2026-03-02 08:00\n")
    source = connector(tmp_path)
    (batch,) = list(source.poll())
    assert batch.checkpoint is None and batch.events == []
    assert "call_id, call_time" in batch.problems[0] and "not in the header" in batch.problems[0]
    assert list(source.poll()) == []


def test_column_mapping_and_outcome_words_are_configurable(tmp_path):
    (tmp_path / "ace.csv").write_text("Id,Start,Result\nA1,2026-03-02T08:00:00+01:00,Connected\nA2,2026-03-02T08:01:00+01:00,Lost\n")
    source = connector(
        tmp_path,
        delimiter=",",
        columns={"call_id": "Id", "call_time": "Start", "outcome": "Result", "callback_booked": None, "callback_made": None},
        outcomes={"answered": ["connected"], "abandoned": ["lost"]},
        queue_name="rådgivning",
    )
    (batch,) = list(source.poll())
    assert [(e.source_key, e.type) for e in batch.events] == [("A1", "call.offered"), ("A1", "call.answered"), ("A2", "call.offered"), ("A2", "call.abandoned")]
    assert batch.events[0].fields == {"queue": "rådgivning"}


def test_a_file_in_another_encoding_is_reported_with_the_fix(tmp_path):
    (tmp_path / "latin.csv").write_bytes("call_id;call_time;callback_booked;callback_made;outcome\nX1;2026-03-02 08:00;;;nådd\n".encode("latin-1"))
    (batch,) = list(connector(tmp_path).poll())
    assert "set `encoding`" in batch.problems[0]


# -- through the agent: pseudonyms, outbox, and nothing personal stored -------------------------------


def make_agent(tmp_path, export_folder, client=None):
    config = CollectorConfig(
        unit=UNIT,
        device=DEVICE,
        outbox={"path": tmp_path / "state" / "outbox.db"},
        pseudonyms={"secret_file": tmp_path / "state" / "pseudonym.key"},
        connectors=[ConnectorEntry(type="callback_csv", folder=str(export_folder), settle_s=0, columns=FIXTURE_COLUMNS)],
    )
    return Agent(config, client=client or FakeMqttClient(), clock_state=lambda: None)


def test_the_agent_stores_pseudonymous_valid_events_and_no_phone_number_name_or_id_reaches_the_outbox(tmp_path, export_folder):
    agent = make_agent(tmp_path, export_folder)
    report = agent.collect_once()
    assert (report.added, report.refused, len(report.problems)) == (20, 0, 4)
    rows = agent.outbox.batch_after(0, 100)
    events = [orjson.loads(row.body) for row in rows]
    assert Counter(e["type"] for e in events) == {
        "call.offered": 7,
        "call.callback_booked": 5,
        "call.callback_done": 4,
        "call.answered": 1,
        "call.abandoned": 1,
        "call.rejected": 2,
    }
    assert all(e["unit"] == UNIT and e["device"] == DEVICE for e in events)
    assert len({e["call"] for e in events}) == 9  # one pseudonym per call, shared by its events
    agent.outbox.close()
    # The lookup map keeps the call ids on the device by design (collector/lookup.py), and nothing else.
    stored = b"".join(path.read_bytes() for path in (tmp_path / "state").iterdir() if path.name != "lookup.db")
    for value in FAKE_PHONES + FAKE_NAMES + SOURCE_IDS + ["19121212", "1740605"]:
        assert value.encode() not in stored, value
    lookup = (tmp_path / "state" / "lookup.db").read_bytes()
    for value in FAKE_PHONES + FAKE_NAMES + ["19121212", "1740605"]:
        assert value.encode() not in lookup, value


def test_a_restart_does_not_read_the_same_file_again(tmp_path, export_folder):
    first = make_agent(tmp_path, export_folder)
    first.collect_once()
    first.outbox.close()
    second = make_agent(tmp_path, export_folder)
    assert second.collect_once().added == 0
    assert second.outbox.stats().added == 20


def test_reading_the_same_export_again_gives_the_same_event_ids(tmp_path, export_folder):
    one = make_agent(tmp_path / "a", export_folder)
    one.collect_once()
    (tmp_path / "b" / "state").mkdir(parents=True)
    shutil.copy(tmp_path / "a" / "state" / "pseudonym.key", tmp_path / "b" / "state" / "pseudonym.key")
    os.chmod(tmp_path / "b" / "state" / "pseudonym.key", 0o600)
    two = make_agent(tmp_path / "b", export_folder)
    two.collect_once()
    ids = lambda agent: [row.event_id for row in agent.outbox.batch_after(0, 100)]  # noqa: E731
    assert ids(one) == ids(two)
