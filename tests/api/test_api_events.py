"""POST /api/v1/events: each event committed once or rejected with a reason kept as a dead letter.

Choice documented here and in server/api/events.py: a device token posting an event for another unit
(or naming another device) gets that event rejected on its own, with a reason and a dead letter, and the
rest of the array is committed: the same as over MQTT, where one bad event never costs the others.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from .api_world import VC01, VC02, Api, event, running_api
from vardkoll.server.storage.tables import DeadLetter, StoredEvent

# Skatteverket's published test numbers.
PERSONAL_NUMBER = "19121212-1212"
PERSONAL_DIGITS = ("191212121212", "1212121212", "121212-1212", "19121212")


def test_events_are_committed_and_repeats_counted_once(api):
    first = api.post("/api/v1/events", json=[event("e-1"), event("e-2"), event("e-2")])
    assert first.status_code == 200
    result = first.json()
    assert (result["new"], result["duplicates"], result["rejected"]) == (2, 1, [])
    assert sorted(result["committed"]) == ["e-1", "e-2", "e-2"]  # a repeat is committed too: the sender may forget it
    again = api.post("/api/v1/events", json=[event("e-1"), event("e-3")]).json()
    assert again["new"] == 1 and again["duplicates"] == 1 and sorted(again["committed"]) == ["e-1", "e-3"]


def test_an_empty_array_is_fine(api):
    assert api.post("/api/v1/events", json=[]).json() == {"committed": [], "rejected": [], "new": 0, "duplicates": 0}


def test_bad_events_are_rejected_with_reasons_and_kept_as_dead_letters(api):
    device = api.token("device", unit=VC01, device="pi-7")
    response = api.post(
        "/api/v1/events",
        token=device,
        json=[
            event("ok-1"),
            {"v": 1, "id": "bad-1", "type": "call.teleport", "unit": VC01, "at": "2026-03-02T08:00:00+01:00"},
            event("bad-2", at="2026-03-02T08:00:00"),
            event("bad-3", call=None),
            "not an event",
        ],
    )
    assert response.status_code == 200
    result = response.json()
    assert result["committed"] == ["ok-1"] and result["new"] == 1
    reasons = [r["reason"] for r in result["rejected"]]
    assert len(reasons) == 4
    assert "array item 1: unknown type 'call.teleport'" in reasons[0]
    assert "array item 2" in reasons[1] and "offset" in reasons[1]
    assert "array item 3" in reasons[2] and "'call'" in reasons[2]
    assert reasons[3] == "array item 4: event must be an object"
    letters = api.get(f"/api/v1/dead-letters?unit={VC01}").json()
    assert sorted(d["reason"] for d in letters) == sorted(reasons)
    assert {(d["source"], d["unit"], d["device"]) for d in letters} == {("http", VC01, "pi-7")}
    assert [d["id"] for d in letters] == sorted((d["id"] for d in letters), reverse=True)  # newest first


def test_a_conflicting_reuse_of_an_id_is_rejected(api):
    api.post("/api/v1/events", json=[event("e-1")])
    result = api.post("/api/v1/events", json=[event("e-1", call="call-other")]).json()
    assert result["rejected"] == [{"id": "e-1", "reason": "event id was already used by a different event of this unit"}]


@pytest.mark.parametrize("where", ["queue", "id", "nested"])
def test_a_personal_number_is_refused_and_its_digits_are_stored_nowhere(api, where):
    bad = {
        "queue": event("pn-1", queue=f"patient {PERSONAL_NUMBER}"),
        "id": event(PERSONAL_NUMBER),
        "nested": event("pn-1", extra={"notes": [f"ring {PERSONAL_NUMBER}"]}),
    }[where]
    response = api.post("/api/v1/events", json=[bad, event("fine-1")])
    assert response.status_code == 200
    result = response.json()
    assert result["committed"] == ["fine-1"] and len(result["rejected"]) == 1
    assert "personal identity number" in result["rejected"][0]["reason"]
    assert not any(digits in response.text for digits in PERSONAL_DIGITS)
    letters = api.get("/api/v1/dead-letters")
    assert not any(digits in letters.text for digits in PERSONAL_DIGITS)
    with api.services.sessions() as session:
        stored = [repr(row.__dict__) for row in session.scalars(select(DeadLetter))]
        stored += [row.body.decode() + row.event_id for row in session.scalars(select(StoredEvent))]
    assert stored and not any(digits in text for text in stored for digits in PERSONAL_DIGITS)


def test_device_token_cannot_post_for_another_unit_or_device(api):
    device = api.token("device", unit=VC01, device="pi-1")
    result = api.post("/api/v1/events", token=device, json=[event("mine-1"), event("theirs-1", unit=VC02), event("other-dev-1", device="pi-2")]).json()
    assert result["committed"] == ["mine-1"]
    reasons = {r["id"]: r["reason"] for r in result["rejected"]}
    assert reasons["theirs-1"] == f"event for unit {VC02} sent by a device of unit {VC01}"
    assert reasons["other-dev-1"] == "event names device pi-2 but came from device pi-1"
    assert {d["event_id"] for d in api.get(f"/api/v1/dead-letters?unit={VC01}").json()} == {"theirs-1", "other-dev-1"}
    with api.services.sessions() as session:
        assert session.scalars(select(StoredEvent.device).where(StoredEvent.event_id == "mine-1")).one() == "pi-1"  # stamped


def test_body_that_is_not_json_or_not_an_array_is_400(api):
    for body, says in ((b"{not json", "not valid JSON"), (b'{"device": "pi-1", "events": []}', '"events" list'), (b'"x"', "JSON array")):
        response = api.post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and says in response.json()["detail"]
        assert "Traceback" not in response.text
    letters = api.get("/api/v1/dead-letters").json()
    assert len(letters) == 3 and all(d["payload_sha256"] and d["payload_bytes"] for d in letters)


def test_hostile_bodies_never_give_a_traceback(api):
    for body in (b"[" * 100_000, b"\xff\xfe[]", b"[1e999999]", b"[" + b'{"v":1},' * 10 + b"]", b"null", b""):
        response = api.post("/api/v1/events", content=body)
        assert response.status_code in (200, 400), body[:20]
        assert "Traceback" not in response.text and response.json()


def test_oversized_body_is_413_and_kept_as_a_dead_letter(database_url):
    with running_api(database_url, max_payload_bytes=2048, max_batch_events=5) as api:
        big = [event(f"big-{n}", queue="q" * 100) for n in range(20)]
        response = api.post("/api/v1/events", json=big)
        assert response.status_code == 413 and "at most 2048" in response.json()["detail"]
        many = api.post("/api/v1/events", json=[event(f"n-{n}") for n in range(6)])
        assert many.status_code == 413 and "at most 5 are accepted" in many.json()["detail"]
        streamed = api.post("/api/v1/events", content=iter([json.dumps(big).encode()]))  # no Content-Length
        assert streamed.status_code == 413
        assert len(api.get("/api/v1/dead-letters").json()) == 3
        assert api.post("/api/v1/events", json=[event("small-1")]).json()["new"] == 1  # still serving


def test_dead_letters_filter_by_time_and_limit(api: Api):
    for n in range(5):
        api.post("/api/v1/events", json=[event(f"bad-{n}", call=None)])
    letters = api.get("/api/v1/dead-letters?limit=2").json()
    assert len(letters) == 2 and letters[0]["id"] > letters[1]["id"]
    newest = letters[0]["received_at"]
    assert all(d["received_at"] >= newest for d in api.get("/api/v1/dead-letters", params={"since": newest}).json())
    assert api.get("/api/v1/dead-letters", params={"since": "2026-03-02T08:00:00"}).status_code == 422
    assert api.get("/api/v1/dead-letters", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/dead-letters", params={"unit": "nope"}).status_code == 422


def test_unicode_variants_of_a_personal_number_are_refused_and_stored_nowhere(api):
    from support.number_variants import ISSUE_FORMS

    bad = [event(f"pn-{index}", queue=f"ring {text}") for index, text in enumerate(ISSUE_FORMS)]
    body = json.dumps([*bad, event("fine-1")], ensure_ascii=False).encode()
    response = api.post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    result = response.json()
    assert result["committed"] == ["fine-1"] and len(result["rejected"]) == len(ISSUE_FORMS)
    assert all(r["reason"].startswith("array item") and "personal identity number" in r["reason"] for r in result["rejected"])
    with api.services.sessions() as session:
        stored = [row.body.decode() for row in session.scalars(select(StoredEvent))]
        stored += [repr(row.__dict__) for row in session.scalars(select(DeadLetter))]
    assert len(stored) == 1 + len(ISSUE_FORMS) and not any("ring" in text for text in stored[1:])


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_a_poison_event_is_a_rejection_with_a_reason_never_a_500(backend, tmp_path, request):
    """Year 9999 overflowed the local date (500 for the whole request); a 3 MB event and `listed: 2**63`
    were accepted."""
    url = f"sqlite:///{tmp_path}/t.db" if backend == "sqlite" else request.getfixturevalue("postgres_database_url")
    snapshot = {"v": 1, "id": "big", "type": "listing.snapshot", "unit": VC01, "at": "2026-03-02T08:00:00+01:00", "listed": 2**63, "named_doctor": 1}
    with running_api(url) as api:
        response = api.post("/api/v1/events", json=[event("far", at="9999-12-31T23:59:59Z"), event("ok"), snapshot, event("fat", padding="x" * (3 << 20))])
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["committed"] == ["ok"]
        reasons = {r["id"]: r["reason"] for r in result["rejected"]}
        assert set(reasons) == {"far", "big", "fat"} and "'at'" in reasons["far"]
