"""The FHIR R4 connector: paging, the _lastUpdated cursor, backoff, malformed resources, and no personal data out."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import httpx
import orjson
import pytest

from vardkoll.collector.agent import Agent
from vardkoll.collector.config import CollectorConfig, ConnectorEntry
from vardkoll.collector.connectors import REGISTRY, build_connector
from vardkoll.collector.connectors.base import ConnectorContext
from vardkoll.collector.connectors.fhir_r4 import FhirR4Connector
from vardkoll.collector.pipeline import Pipeline
from vardkoll.collector.pseudonyms import Pseudonymiser
from vardkoll.protocol.validation import validate_event
from vardkoll.server.replay import replay_path

from .events import DEVICE, UNIT
from .fhir_fixtures import TOKEN, FhirFixtures, LoopbackFhirServer, Request

NOW = datetime(2026, 3, 5, 6, 0, tzinfo=timezone.utc).timestamp()
PERSONAL = ["191212121212", "19121212", "196109732393", "Tolvan", "Tolvansson", "Fiktiva", "070-1740605", "0701740605", "070-1740606", "Testgatan", "Läkarsson"]
SETTINGS = {"listing_organizations": ["Organization/vc-norrby", "SE2321000016-15SF"], "token_env": "VARDKOLL_TEST_FHIR_TOKEN", "page_size": 2}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("VARDKOLL_TEST_FHIR_TOKEN", TOKEN)


def make(fixtures: FhirFixtures, checkpoints: dict | None = None, clock: Clock | None = None, **settings) -> FhirR4Connector:
    stored = checkpoints if checkpoints is not None else {}
    context = ConnectorContext("fhir", stored.get, clock or Clock())
    config = FhirR4Connector.Config.parse({"base_url": fixtures.base, **SETTINGS, **settings})
    return FhirR4Connector(config, context, transport=fixtures.transport())


def sweep(connector: FhirR4Connector, checkpoints: dict | None = None):
    batches = list(connector.poll())
    if checkpoints is not None:
        for batch in batches:
            if batch.checkpoint is not None:
                checkpoints[batch.checkpoint.key] = batch.checkpoint.value
    return batches


def events_of(batches) -> list:
    return [event for batch in batches for event in batch.events]


def test_registered_by_name():
    assert REGISTRY["fhir_r4"] is FhirR4Connector


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"base_url": "http://fhir.example.se/r4", "listing_organizations": ["Organization/x"]}, "must be https://"),
        ({"base_url": "https://fhir.example.se/r4", "listing_organizations": []}, "listing_organizations"),
        ({"base_url": "https://fhir.example.se/r4", "listing_organizations": ["x"], "token_file": "/t", "token_env": "T"}, "either token_file or token_env"),
        ({"base_url": "https://fhir.example.se/r4", "listing_organizations": ["x"], "professions": {"urn:x|Q": "doktor"}}, "professions"),
    ],
)
def test_a_bad_config_names_the_connector_and_the_key(settings, message):
    with pytest.raises(ValueError, match=message):
        build_connector("fhir_r4", settings, ConnectorContext("fhir", {}.get, Clock()))


def test_a_sweep_maps_encounters_and_appointments_to_care_and_visit_events():
    connector = make(FhirFixtures())
    found = sorted((e.type, e.source_key) for e in events_of(sweep(connector)))
    assert found == [
        ("care.assessed", "Encounter/enc-1"),
        ("care.assessed", "Encounter/enc-2"),
        ("care.cancelled", "Appointment/appt-3"),
        ("care.contact", "Appointment/appt-1"),
        ("care.contact", "Appointment/appt-3"),
        ("care.contact", "Appointment/appt-4"),
        ("care.contact", "Appointment/appt-5"),
        ("visit.completed", "Encounter/enc-1"),
        ("visit.completed", "Encounter/enc-2"),
    ]
    by_key = {(e.type, e.source_key): e for e in events_of(sweep(make(FhirFixtures())))}
    visit = by_key["visit.completed", "Encounter/enc-1"]
    assert visit.fields == {"profession": "doctor", "listed": True, "fixed_doctor": None, "form": "physical"}
    assert visit.refs == {
        "patient": ("patient", "Patient/pat-1"),
        "practitioner": ("practitioner", "SE0000000000-TESTLAK1"),
        "fixed_doctor": ("practitioner", "SE0000000000-TESTLAK1"),
    }
    phone = by_key["visit.completed", "Encounter/enc-2"]  # a PractitionerRole, a Patient read one by one
    assert phone.fields == {"profession": "nurse", "listed": False, "fixed_doctor": None, "form": "phone"}
    assert phone.refs["practitioner"] == ("practitioner", "SE0000000000-TESTSSK1") and "fixed_doctor" not in phone.refs
    assert by_key["care.assessed", "Encounter/enc-2"].refs == {"case": ("case", "Appointment/appt-4")}
    contact = by_key["care.contact", "Appointment/appt-1"]
    assert contact.at.isoformat() == "2026-03-02T08:05:00+01:00" and contact.fields == {"listed": True, "channel": "phone"}
    assert by_key["care.contact", "Appointment/appt-5"].fields["channel"] == "visit"  # a walk-in
    assert by_key["care.cancelled", "Appointment/appt-3"].at == datetime(2026, 3, 3, 7, 0, tzinfo=timezone.utc)


def test_malformed_resources_are_counted_and_reported_by_position_while_the_sweep_goes_on():
    connector = make(FhirFixtures())
    batches = sweep(connector)
    problems = [p for batch in batches for p in batch.problems]
    assert problems == [
        "Encounter search, page 2, entry 2: subject is not a reference to a Patient (an identifier alone is not used)",
        "Encounter search, page 2, entry 4: not a Encounter resource",
        "Appointment search, page 1, entry 6: no participant is a reference to a Patient",
    ]
    counters = connector.counters
    assert counters["malformed"] == 3
    assert (counters["not_finished"], counters["unmapped_profession"], counters["not_a_case"]) == (1, 1, 1)
    assert len(events_of(batches)) == 9


def test_pages_are_followed_and_the_cursor_is_stored_with_the_last_page_only():
    fixtures = FhirFixtures()
    batches = sweep(make(fixtures))
    encounter_requests = fixtures.searches("Encounter")
    assert [r.path for r in encounter_requests] == ["/r4/Encounter", "/r4"]
    assert ("_getpages", "enc-token") in encounter_requests[1].query
    first = dict(encounter_requests[0].query)
    assert first["_lastUpdated"] == "ge2026-02-03T06:00:00Z" and first["_count"] == "2"  # 30 days back: no cursor yet
    assert ("_include", "Encounter:subject") in encounter_requests[0].query
    assert [b.checkpoint.value if b.checkpoint else None for b in batches] == [None, "2026-03-04T14:05:00+00:00", "2026-03-04T12:30:00+00:00"]


def test_the_cursor_never_passes_the_time_the_search_ran():
    """Page 2 serves an Encounter as changed at 14:05, after the search ran at 12:00: something written at
    13:00 is on no page of this sweep, so the next sweep must start at 12:00, not at 14:05."""
    fixtures = FhirFixtures()
    first_page = fixtures.document("encounter-page-1.json")
    first_page["meta"] = {"lastUpdated": "2026-03-04T12:00:00.000Z"}
    fixtures.overrides["encounter-page-1.json"] = first_page
    checkpoints: dict[str, str] = {}
    clock = Clock()
    connector = make(fixtures, checkpoints, clock)
    sweep(connector, checkpoints)
    assert checkpoints["Encounter.last_updated"] == "2026-03-04T12:00:00+00:00"
    assert checkpoints["Appointment.last_updated"] == "2026-03-04T12:30:00+00:00"  # its search ran at 15:00, after everything it served
    clock.now += 60
    sweep(connector, checkpoints)
    assert dict(fixtures.searches("Encounter")[-2].query)["_lastUpdated"] == "ge2026-03-04T12:00:00Z"


def test_a_restart_resumes_at_the_stored_cursor_and_nothing_is_read_before_the_interval():
    checkpoints: dict[str, str] = {}
    clock = Clock()
    fixtures = FhirFixtures()
    connector = make(fixtures, checkpoints, clock)
    sweep(connector, checkpoints)
    assert checkpoints == {"Encounter.last_updated": "2026-03-04T14:05:00+00:00", "Appointment.last_updated": "2026-03-04T12:30:00+00:00"}
    before = len(fixtures.requests)
    clock.now += 30
    assert sweep(connector) == [] and len(fixtures.requests) == before  # interval_s is 60
    restarted = make(fixtures, checkpoints, clock)
    sweep(restarted, checkpoints)
    assert dict(fixtures.searches("Encounter")[-2].query)["_lastUpdated"] == "ge2026-03-04T14:05:00Z"
    assert dict(fixtures.searches("Appointment")[-1].query)["_lastUpdated"] == "ge2026-03-04T12:30:00Z"


def test_429_on_a_later_page_waits_for_retry_after_then_resumes_at_that_page():
    fixtures = FhirFixtures()
    clock = Clock()
    connector = make(fixtures, clock=clock)
    original = fixtures.respond

    def second_page_busy(path, query, authorization):
        if ("_getpages", "enc-token") in query and not getattr(second_page_busy, "done", False):
            second_page_busy.done = True
            fixtures.requests.append(Request(path, query, authorization))
            return 429, {"Retry-After": "120"}, b"{}"
        return original(path, query, authorization)

    fixtures.respond = second_page_busy
    batches = sweep(connector)
    assert len(batches) == 2 and batches[0].checkpoint is None and len(batches[0].events) == 4
    assert batches[1].problems == ["FHIR server unavailable: https://fhir.test.invalid/r4: HTTP 429; trying again in 120 s"]
    clock.now += 119
    assert sweep(connector) == []
    clock.now += 2
    resumed = sweep(connector)
    assert [r.path for r in fixtures.searches("Encounter")][-1] == "/r4"  # page 2, not page 1 again
    assert resumed[0].checkpoint is not None and resumed[0].checkpoint.value == "2026-03-04T14:05:00+00:00"
    assert connector.counters["unavailable"] == 1


def test_5xx_and_network_errors_back_off_doubling_without_retry_after():
    fixtures = FhirFixtures()
    clock = Clock()
    connector = make(fixtures, clock=clock)
    fixtures.fail_next = [(503, {}), httpx.ConnectError("refused"), (502, {})]
    waits = []
    for _ in range(3):
        (batch,) = sweep(connector)
        waits.append(batch.problems[0].rsplit("in ", 1)[1])
        clock.now += 1000
    assert waits == ["5 s", "10 s", "20 s"]
    assert len(events_of(sweep(connector))) == 9  # then it recovers and reads everything


def test_a_refused_token_is_reported_without_the_token(caplog):
    fixtures = FhirFixtures(token="the-server-wants-another-token")
    connector = make(fixtures)
    with caplog.at_level(logging.DEBUG):
        (batch,) = sweep(connector)
    assert batch.problems == [
        "FHIR request failed: https://fhir.test.invalid/r4/Encounter: HTTP 401: the token was refused; check `token_file`/`token_env` and the token's scopes"
    ]
    assert fixtures.requests[0].authorization == f"Bearer {TOKEN}"
    assert TOKEN not in caplog.text and TOKEN not in repr(connector.config)


def test_the_token_comes_from_a_file_read_at_each_request(tmp_path):
    token_file = tmp_path / "fhir-token"
    token_file.write_text(TOKEN + "\n")
    fixtures = FhirFixtures()
    connector = make(fixtures, token_env=None, token_file=str(token_file))
    assert len(events_of(sweep(connector))) == 9
    assert {r.authorization for r in fixtures.requests} == {f"Bearer {TOKEN}"}


def test_a_next_link_to_another_server_is_not_followed():
    fixtures = FhirFixtures()
    page = fixtures.document("encounter-page-1.json")
    page["link"][-1]["url"] = "https://elsewhere.invalid/r4?_getpages=enc-token"
    fixtures.overrides["encounter-page-1.json"] = page
    batches = sweep(make(fixtures))
    assert "points to another server" in batches[-1].problems[0]
    assert all("elsewhere" not in r.path for r in fixtures.requests)


def test_no_personal_data_reaches_the_wire_events():
    connector = make(FhirFixtures())
    pipeline = Pipeline(Pseudonymiser(b"k" * 32), UNIT, DEVICE)
    wire = [pipeline.to_wire("fhir", event) for event in events_of(sweep(connector))]
    for event in wire:
        validate_event(event)
    text = orjson.dumps(wire).decode()
    for value in PERSONAL + ["pat-1", "pat-2", "prac-lk1", "TESTLAK1", "appt-1", "enc-1"]:
        assert value not in text
    assert all(
        set(event) <= {"v", "id", "type", "unit", "device", "at", "case", "patient", "listed", "channel", "profession", "form", "practitioner", "fixed_doctor"}
        for event in wire
    )


def test_a_patient_whose_logical_id_is_a_personal_number_leaves_no_trace(caplog):
    fixtures = FhirFixtures()
    patient = None
    for name in ("encounter-page-1.json", "encounter-page-2.json", "appointment-page-1.json"):
        page = json.loads((Path(__file__).parent / "fixtures" / "fhir" / name).read_text().replace("pat-1", "191212121212"))
        patient = next(e["resource"] for e in page["entry"] if isinstance(e["resource"], dict) and e["resource"]["resourceType"] == "Patient")
        page["entry"] = [e for e in page["entry"] if not (isinstance(e["resource"], dict) and e["resource"]["resourceType"] == "Patient")]
        fixtures.overrides[name] = page
    fixtures.overrides["Patient-191212121212.json"] = patient  # read one by one: the id is in the URL
    pipeline = Pipeline(Pseudonymiser(b"k" * 32), UNIT, DEVICE)
    with caplog.at_level(logging.DEBUG):
        batches = sweep(make(fixtures))
    wire = [pipeline.to_wire("fhir", event) for event in events_of(batches)]
    assert len(wire) == 9 and all(validate_event(event) for event in wire)
    assert any(r.path.endswith("/Patient/191212121212") for r in fixtures.requests)
    assert "191212121212" not in orjson.dumps(wire).decode()
    assert "191212121212" not in caplog.text + " ".join(p for b in batches for p in b.problems)
    # and when reading that patient fails, the message names the resource type only
    connector = make(fixtures)
    original = fixtures.respond
    fixtures.respond = lambda path, query, authorization: (503, {}, b"{}") if path.endswith("/Patient/191212121212") else original(path, query, authorization)
    problems = [p for b in sweep(connector) for p in b.problems]
    assert problems == ["FHIR server unavailable: https://fhir.test.invalid/r4/Patient/…: HTTP 503; trying again in 5 s"]


def test_end_to_end_over_a_real_loopback_http_server_into_the_outbox_and_replay(tmp_path):
    token_file = tmp_path / "fhir-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    with LoopbackFhirServer() as server:
        entry = ConnectorEntry(
            type="fhir_r4", name="journal", base_url=server.base_url, token_file=str(token_file), listing_organizations=["SE2321000016-15SF"], page_size=2
        )
        config = CollectorConfig(
            unit=UNIT,
            device=DEVICE,
            mqtt={"url": "mqtt://127.0.0.1:1"},
            outbox={"path": tmp_path / "outbox.db"},
            pseudonyms={"secret_file": tmp_path / "pseudonym.key"},
            connectors=[entry],
        )
        agent = Agent(config, clock_state=lambda: None, wall_clock=lambda: NOW)
        report = agent.collect_once()
        agent.connectors["journal"].close()
        requests = server.fixtures.requests
    assert (report.added, report.refused, len(report.problems)) == (9, 0, 3)
    assert agent.outbox.checkpoint("journal", "Encounter.last_updated") == "2026-03-04T14:05:00+00:00"
    dump = tmp_path / "events.jsonl"
    with open(dump, "wb") as stream:
        agent.outbox.dump_jsonl(stream)
    agent.outbox.close()
    text = dump.read_text()
    for value in PERSONAL:
        assert value not in text
    assert all(r.authorization == f"Bearer {TOKEN}" for r in requests)
    results = {r["metric"]: r for r in replay_path(dump)["results"]}
    assessment, continuity = results["assessment"], results["continuity"]
    assert (assessment["numerator"], assessment["denominator"], assessment["details"]["not_listed"]) == (1, 1, 1)
    assert (continuity["numerator"], continuity["denominator"]) == (1, 1)


def test_both_hl7_sweden_bindings_of_hsa_id_and_legitimation_code_are_read():
    from vardkoll.collector.connectors.fhir_r4 import mapping

    connector = make(FhirFixtures())
    newer = {
        "resourceType": "Practitioner",
        "id": "p9",
        "identifier": [{"system": "urn:oid:1.2.752.29.6.2.1", "value": "SE0000000000-TESTLAK9"}],
        "qualification": [
            {"code": {"coding": [{"system": "urn:oid:1.2.752.116.3.1.1", "code": "SJ"}]}},
            {"code": {"coding": [{"system": "urn:oid:1.2.752.116.3.1.1", "code": "LK"}]}},
        ],
    }
    key, practitioner, role = mapping.practitioner_key({"reference": "Practitioner/p9"}, {"Practitioner/p9": newer}.get)
    assert key == "SE0000000000-TESTLAK9"
    assert mapping.profession_of(practitioner, role, connector.tables) == "doctor"  # LK before SJ, whatever the order
    assert (
        mapping.profession_of({"qualification": [{"code": {"coding": [{"system": "urn:oid:1.2.752.116.3.1.3", "code": "US"}]}}]}, None, connector.tables)
        is None
    )
