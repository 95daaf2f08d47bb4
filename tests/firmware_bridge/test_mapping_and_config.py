"""From a press to a v1 event: ids and pseudonyms (made by the collector's pipeline), time stamping, the config
rules."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import vardkoll.firmware_bridge as fb
from vardkoll.firmware_bridge.config import ConfigError, DeviceConfig, InputMapping
from vardkoll.firmware_bridge.mapping import CONNECTOR, bridge_pipeline, source_event, stamp
from vardkoll.firmware_bridge.messages import EventMsg, Hello, MalformedMessage
from vardkoll.protocol import contains_personal_number, validate_event

from .conftest import KEY, UNIT, device_entries, make_config

PSEUDONYM = re.compile(r"[A-Za-z0-9_-]{6,64}")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
TZ = ZoneInfo("Europe/Stockholm")


def press(local_seq: int, input_id: int = 1, ref: int = 0, synced: bool = True, at: datetime = NOW) -> EventMsg:
    return EventMsg(local_seq, input_id, 1 if synced else 0, int(at.timestamp() * 1000), ref)


def build_event(key, device, mapping, press, store_id, at, tz, event_device=None) -> dict:
    """A press made into an event as the bridge makes it: a source event through the collector's pipeline."""
    return bridge_pipeline(key, device.unit, event_device).to_wire(CONNECTOR, source_event(device, mapping, press, store_id, at, tz))


def event_id(key: bytes, device_id: str, store_id: int, local_seq: int) -> str:
    contact = InputMapping("care.contact", channel="visit")
    return build_event(key, DeviceConfig(device_id, UNIT, "ticket_dispenser", {1: contact}), contact, press(local_seq), store_id, NOW, TZ)["id"]


def case_pseudonym(key: bytes, unit: str, device, press: EventMsg, store_id: int) -> str:
    assert unit == device.unit
    return build_event(key, device, device.inputs[press.input], press, store_id, NOW, TZ)["case"]


def test_ids_and_case_pseudonyms_are_letters_only_and_never_a_personal_number():
    config = make_config()
    dispenser = config.device("disp-entre-1")
    for local_seq in list(range(1, 2000)) + [121212_1212 % 2**32, 2**32 - 1]:
        ident = event_id(KEY, "disp-entre-1", 7, local_seq)
        case = case_pseudonym(KEY, UNIT, dispenser, press(local_seq), 7)
        assert PSEUDONYM.fullmatch(case) and re.fullmatch(r"fw-[A-Za-z]{24}", ident)
        assert not re.search(r"\d", case + ident)
        assert not contains_personal_number(case + ident)


def test_the_same_press_always_becomes_the_same_event_id():
    assert event_id(KEY, "d1", 1, 5) == event_id(KEY, "d1", 1, 5)
    assert len({event_id(KEY, "d1", 1, 5), event_id(KEY, "d1", 2, 5), event_id(KEY, "d2", 1, 5), event_id(b"other-key-000000", "d1", 1, 5)}) == 4


def test_dispenser_ticket_becomes_a_drop_in_contact_that_validates():
    config = make_config()
    device = config.device("disp-entre-1")
    event = build_event(KEY, device, device.inputs[1], press(3), 7, NOW, TZ)
    parsed = validate_event(event)
    assert (parsed.type, parsed.channel, parsed.listed, parsed.unit) == ("care.contact", "visit", True, UNIT)
    assert event["at"] == "2026-03-02T09:00:00.000+01:00"


def test_panel_press_with_a_ticket_ref_names_the_ticket_case():
    config = make_config()
    dispenser, panel = config.device("disp-entre-1"), config.device("panel-1")
    contact = build_event(KEY, dispenser, dispenser.inputs[1], press(41), 1, NOW, TZ)
    assessed = build_event(KEY, panel, panel.inputs[2], press(5, input_id=2, ref=41), 9, NOW, TZ)
    unlinked = build_event(KEY, panel, panel.inputs[2], press(6, input_id=2), 9, NOW, TZ)
    assert validate_event(assessed).profession == "doctor"
    assert assessed["case"] == contact["case"] != unlinked["case"]


def test_ids_and_cases_are_the_values_the_bridge_made_before_it_used_the_pipeline():
    """Worked out with the bridge's own hash before it went through the collector's pipeline (vardkoll before
    issue 11). A clinic upgrading while a ticket's case is open keeps contact and assessment in one case, and
    a press re-sent across the upgrade keeps its event id."""
    config = make_config()
    dispenser, panel = config.device("disp-entre-1"), config.device("panel-1")
    at = NOW.replace(microsecond=123000)
    contact = build_event(KEY, dispenser, dispenser.inputs[1], press(3, ref=41, at=at), 7, at, TZ, "vc-bridge-1")
    assert contact == {
        "v": 1,
        "id": "fw-etrypblEEdumFymCAuzqlBsn",
        "type": "care.contact",
        "unit": UNIT,
        "device": "vc-bridge-1",
        "at": "2026-03-02T09:00:00.123+01:00",
        "case": "kqzjptqlixsAhmfAtoybxqclt",
        "listed": True,
        "channel": "visit",
    }
    no_ref = build_event(KEY, dispenser, dispenser.inputs[1], press(4, at=at), 7, at, TZ)
    assert (no_ref["id"], no_ref["case"], "device" in no_ref) == ("fw-ffsfybvFkblkkkjgrtnFiBqv", "kziBceguCFkbwydBlvDyFADkE", False)
    linked = build_event(KEY, panel, panel.inputs[2], press(5, input_id=2, ref=41, at=at), 9, at, TZ, "vc-bridge-1")
    assert (linked["id"], linked["case"]) == ("fw-ufraAcxphvxcgldjetanacjy", "kqzjptqlixsAhmfAtoybxqclt")
    unlinked = build_event(KEY, panel, panel.inputs[2], press(6, input_id=2, at=at), 9, at, TZ, "vc-bridge-1")
    assert (unlinked["id"], unlinked["case"]) == ("fw-wnsqgjbhwBmwEavkcrFCtieh", "klBnAcdswgzDhbzEDqgvmunAa")


def test_only_the_collectors_pseudonym_module_holds_a_keyed_hash():
    """One seam for privacy review: raw ids meet the secret in collector/pipeline.py, through the schemes in
    collector/pseudonyms.py, and nowhere else in the edge code."""
    root = Path(__file__).parents[2]
    keyed = sorted(
        str(path.relative_to(root))
        for folder in ("collector", "firmware_bridge", "protocol")
        for path in (root / folder).rglob("*.py")
        if re.search(r"^\s*(import hmac|from hmac )", path.read_text(), re.M)
    )
    assert keyed == ["collector/pseudonyms.py"]


def test_device_time_is_used_once_synced_else_receive_time_or_held():
    received = NOW + timedelta(minutes=10)
    assert stamp(press(1), received, unsynced_policy="receive_time", max_future_skew_s=300) == fb.mapping.Stamp(NOW, "device")
    unsynced = press(1, synced=False)
    assert stamp(unsynced, received, unsynced_policy="receive_time", max_future_skew_s=300).source == "receive_time_unsynced"
    assert stamp(unsynced, received, unsynced_policy="hold", max_future_skew_s=300).at is None
    future = press(1, at=received + timedelta(hours=1))
    assert stamp(future, received, unsynced_policy="receive_time", max_future_skew_s=300) == fb.mapping.Stamp(received, "receive_time_skew")


def test_malformed_hello_is_refused_not_crashed():
    good = Hello("disp-1", UNIT, 1, (1, 0, 0), 5).encode()
    assert Hello.decode(good).device_id == "disp-1"
    for broken in (good[:5], good[:-1], good + b"x", good.replace(b"disp-1", b"disp/1")):
        with pytest.raises(MalformedMessage):
            Hello.decode(broken)


def test_example_config_loads_the_way_bridge_run_reads_it():
    from vardkoll.collector.config import CollectorConfig
    from vardkoll.firmware_bridge.config import read_document
    from vardkoll.firmware_bridge.service import bridge_config_for_collector

    document = read_document(Path(fb.__file__).with_name("example-bridge.toml"))
    assert "pseudonym_key_file" not in document and "pseudonym_key" not in document  # the collector's secret is the key
    config = bridge_config_for_collector(document, CollectorConfig(unit="SE2321000016-15SF", device="vc-norrby-pi-01"))
    assert config.event_device == "vc-norrby-pi-01"
    assert config.unsynced_events == "receive_time"
    assert config.device("panel-mottagning-1").inputs[2].profession == "doctor"


_NO_PYDANTIC = """
import sys
import vardkoll.cli, vardkoll.firmware_bridge.service
print("pydantic" in sys.modules)
from vardkoll.collector.config import CollectorConfig
from vardkoll.firmware_bridge.config import read_document
from vardkoll.firmware_bridge.service import bridge_config_for_collector
bridge_config_for_collector(read_document(sys.argv[1]), CollectorConfig(unit="SE2321000016-15SF", device="vc-norrby-pi-01"))
print("pydantic" in sys.modules)
"""


def test_the_bridge_never_imports_pydantic():
    # It runs inside the collector (SPEC 6's 40 MB), where pydantic would cost about 6 MB resident. The systemd
    # unit runs `vardkoll bridge run` (vardkoll.cli), which builds the service and reads the config.
    example = Path(fb.__file__).with_name("example-bridge.toml")
    result = subprocess.run([sys.executable, "-c", _NO_PYDANTIC, str(example)], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d[0].update(unit="SE123-x"), "devices\\[0\\].unit must be an HSA-id"),
        (lambda d: d[0].update(device_id="bad id"), "devices\\[0\\].device_id"),
        (lambda d: d[0].update(device_id="19121212-1212"), "looks like a personal identity number"),
        (lambda d: d[1].update(device_id="disp-entre-1"), "configured twice"),
        (lambda d: d[0]["inputs"].update({"2": {"event": "care.contact"}}), "needs channel"),
        (lambda d: d[1]["inputs"].update({"3": {"event": "care.assessed", "form": "phone"}}), "needs profession and form"),
        (lambda d: d[1].update(ticket_source="panel-1"), "ticket_source must name a configured ticket_dispenser"),
        (lambda d: d[0]["inputs"].update({"1": {"event": "care.contact", "channel": "walk-in"}}), "Invalid enum value"),
    ],
)
def test_config_errors_say_where_and_what(change, message):
    devices = device_entries()
    change(devices)
    with pytest.raises(ConfigError, match=message):
        make_config(devices=devices)


def test_config_needs_exactly_one_key_source():
    with pytest.raises(ConfigError, match="exactly one"):
        make_config(pseudonym_key=None)
    with pytest.raises(ConfigError, match="at least 16"):
        make_config(pseudonym_key="short")


def test_public_names_are_exported():
    for name in fb.__all__:
        assert hasattr(fb, name), name


def test_outbox_sink_raises_when_the_outbox_refuses_or_drops():
    class Report:
        def __init__(self, refused=(), dropped=0, duplicates=0):
            self.refused, self.dropped, self.duplicates = list(refused), dropped, duplicates

    class FakeOutbox:
        def __init__(self, report):
            self.report, self.seen = report, []

        def add(self, events):
            self.seen.extend(events)
            return self.report

    fb.OutboxSink(FakeOutbox(Report(duplicates=1))).add({"id": "x"})  # a duplicate is stored already: fine
    with pytest.raises(RuntimeError, match="refused"):
        fb.OutboxSink(FakeOutbox(Report(refused=["bad"]))).add({"id": "x"})
    with pytest.raises(RuntimeError, match="dropped"):
        fb.OutboxSink(FakeOutbox(Report(dropped=1))).add({"id": "x"})


# -- the key schedule (issue 16) ----------------------------------------------------------------------------


def _rotating_pipeline(tmp_path: Path):
    from vardkoll.collector.key_schedule import PeriodBook

    return bridge_pipeline(KEY, UNIT, periods=PeriodBook.open(tmp_path / "pseudonym-periods.db", KEY, TZ))


def _ticket_and_panel(pipeline, ticket_at: datetime, panel_at: datetime, ref: int = 17, seq: int = 1) -> tuple[dict, dict]:
    config = make_config()
    dispenser, panel = config.device("disp-entre-1"), config.device("panel-1")
    ticket = pipeline.to_wire(CONNECTOR, source_event(dispenser, dispenser.inputs[1], press(seq, 1, ref, at=ticket_at), 7, ticket_at, TZ))
    done = pipeline.to_wire(CONNECTOR, source_event(panel, panel.inputs[1], press(seq, 1, ref, at=panel_at), 7, panel_at, TZ))
    return ticket, done


def test_a_ticket_drawn_on_the_31st_and_assessed_on_the_2nd_is_one_case_under_its_months_key(tmp_path):
    pipeline = _rotating_pipeline(tmp_path)
    ticket, done = _ticket_and_panel(pipeline, datetime(2027, 1, 31, 15, tzinfo=TZ), datetime(2027, 2, 2, 9, tzinfo=TZ))
    assert ticket["case"] == done["case"]
    assert (
        ticket["case"]
        != build_event(KEY, make_config().device("disp-entre-1"), InputMapping("care.contact", channel="visit"), press(1, 1, 17), 7, NOW, TZ)["case"]
    )


def test_the_same_ticket_number_months_apart_is_two_unlinked_cases_with_unchanged_event_ids(tmp_path):
    pipeline = _rotating_pipeline(tmp_path)
    january, _ = _ticket_and_panel(pipeline, datetime(2027, 1, 10, 9, tzinfo=TZ), datetime(2027, 1, 10, 10, tzinfo=TZ))
    june, _ = _ticket_and_panel(pipeline, datetime(2027, 6, 10, 9, tzinfo=TZ), datetime(2027, 6, 10, 10, tzinfo=TZ), seq=2)
    assert january["case"] != june["case"]
    dispenser = make_config().device("disp-entre-1")
    plain = build_event(KEY, dispenser, dispenser.inputs[1], press(1, 1, 17), 7, datetime(2027, 1, 10, 9, tzinfo=TZ), TZ)
    assert january["id"] == plain["id"]  # a press keeps its id: a re-sent press counts once


def test_the_bridge_service_keys_cases_with_the_collectors_book(tmp_path):
    from vardkoll.collector.config import CollectorConfig
    from vardkoll.firmware_bridge.service import BridgeService, bridge_config_for_collector

    collector = CollectorConfig(unit=UNIT, device="vc-01", outbox={"path": tmp_path / "outbox.db"}, pseudonyms={"secret_file": tmp_path / "pseudonym.key"})
    service = BridgeService(bridge_config_for_collector({"devices": device_entries()}, collector), collector, publish=False)
    try:
        assert service.bridge.pipelines[UNIT].periods is service.periods is not None
        assert (tmp_path / "pseudonym-periods.db").exists()
    finally:
        service.stop()
