"""`vardkoll collector lookup`: the source's own reference for a case seen by a connector, from a local map
that is 0600, bounded in time, never in the outbox and never on the wire (a real Mosquitto listens to all)."""

from __future__ import annotations

import stat
import threading
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from support import wait_until
from vardkoll.cli import app
from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig, ConnectorEntry
from vardkoll.collector.connectors.base import SourceEvent
from vardkoll.collector.lookup import LookupMap, answer
from vardkoll.collector.pipeline import Pipeline
from vardkoll.collector.pseudonyms import Pseudonymiser, load_or_create_secret

from .events import DEVICE, UNIT
from .fhir_fixtures import TOKEN, LoopbackFhirServer

NOW = datetime(2026, 3, 5, 6, 0, tzinfo=timezone.utc)


class Everything:
    """Every byte published on the broker."""

    def __init__(self, port: int) -> None:
        self.payloads: list[bytes] = []
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda client, userdata, message: self.payloads.append(message.topic.encode() + b" " + message.payload)
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe("#", qos=1)
        self._client.loop_start()
        assert subscribed.wait(10)

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def test_lookup_answers_a_case_seen_by_a_connector_and_the_map_stays_on_the_device(tmp_path, mosquitto):
    token_file = tmp_path / "fhir-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    config_file = tmp_path / "collector.toml"
    wire = Everything(mosquitto.port)
    with LoopbackFhirServer() as server:
        entry = ConnectorEntry(
            type="fhir_r4", name="journal", base_url=server.base_url, token_file=str(token_file), listing_organizations=["SE2321000016-15SF"], page_size=2
        )
        config = CollectorConfig(
            unit=UNIT,
            device=DEVICE,
            poll_interval_s=0.2,
            mqtt={"url": mosquitto.url},
            outbox={"path": tmp_path / "outbox.db"},
            pseudonyms={"secret_file": tmp_path / "pseudonym.key"},
            connectors=[entry],
            publisher={"start_jitter_s": 0.1, "heartbeat_interval_s": 1},
        )
        config_file.write_text(
            f'unit = "{UNIT}"\ndevice = "{DEVICE}"\n[outbox]\npath = "{tmp_path / "outbox.db"}"\n[pseudonyms]\nsecret_file = "{tmp_path / "pseudonym.key"}"\n'
        )
        agent = Agent(config, clock_state=lambda: None)
        thread = threading.Thread(target=agent.run, kwargs={"install_signal_handlers": False}, daemon=True)
        thread.start()
        try:
            assert wait_until(lambda: sum(b" care.contact" in p or b'"care.contact"' in p for p in wire.payloads) > 0, 30)
            assert wait_until(lambda: any(b"/status" in p for p in wire.payloads), 10)
        finally:
            agent.stop()
            thread.join(10)
            wire.stop()
    pseudonymiser = Pseudonymiser(load_or_create_secret(tmp_path / "pseudonym.key"))
    case = pseudonymiser.for_period("2026-03").pseudonym("case", "Appointment/appt-1")  # booked 2 March: March's key
    assert any(case.encode() in p for p in wire.payloads), "the case went out under its pseudonym"

    result = CliRunner().invoke(app, ["collector", "lookup", case, "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{case} (ärende, källa journal): Appointment/appt-1 (första händelsen " + result.output.split("första händelsen ")[1]
    unknown = CliRunner().invoke(app, ["collector", "lookup", "zzzzzzzzzzzzzzzzzzzzzz", "--config", str(config_file)])
    assert unknown.exit_code == 1 and "okänd på den här insamlaren" in unknown.output

    lookup_file = tmp_path / "lookup.db"
    assert stat.S_IMODE(lookup_file.stat().st_mode) == 0o600
    references = [b"appt-1", b"appt-2", b"Appointment/"]
    assert b"appt-1" in lookup_file.read_bytes()
    outbox_bytes = b"".join(path.read_bytes() for path in tmp_path.glob("outbox.db*"))
    for reference in references:
        assert reference not in outbox_bytes, "never in the outbox"
        assert not any(reference in payload for payload in wire.payloads), "never on the wire"


def test_the_map_forgets_after_the_retention_and_keeps_no_personal_number(tmp_path):
    lookup = LookupMap(tmp_path / "lookup.db", retention_days=60)
    pipeline = Pipeline(Pseudonymiser(b"k" * 32), UNIT, DEVICE, lookup)
    at = NOW - timedelta(days=1)
    pipeline.to_wire(
        "bokning", SourceEvent("care.contact", at, "B-1", {"case": ("case", "BOK-4711"), "patient": ("patient", "pat-9")}, {"listed": True, "channel": "phone"})
    )
    event = pipeline.to_wire("bokning", SourceEvent("care.contact", at, "B-2", {"case": ("case", "19121212-1212")}, {"listed": True, "channel": "phone"}))
    lookup.flush(NOW)
    case = pipeline.to_wire("bokning", SourceEvent("care.contact", at, "B-1", {"case": ("case", "BOK-4711")}, {"listed": True, "channel": "phone"}))["case"]
    lookup.flush(NOW)

    assert [r.reference for r in lookup.lookup(case, NOW + timedelta(days=59))] == ["BOK-4711"]
    assert lookup.lookup(pipeline._scheme.pseudonym("patient", "pat-9"), NOW) == [], "patients are never kept"
    withheld = lookup.lookup(event["case"], NOW)
    assert [r.reference for r in withheld] == [None]
    assert "källsystemets id är ett personnummer och sparas inte" in answer(event["case"], withheld, 60)
    lookup.close()
    stored = (tmp_path / "lookup.db").read_bytes()
    assert b"19121212" not in stored and b"121212-1212" not in stored

    reopened = LookupMap(tmp_path / "lookup.db", retention_days=60)
    assert reopened.lookup(case, NOW + timedelta(days=61)) == [], "nothing after the retention"
    reopened.close()
    assert b"BOK-4711" not in (tmp_path / "lookup.db").read_bytes(), "deleted, not only hidden"
