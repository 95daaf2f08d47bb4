"""The publisher sends the outbox in throttled batches and deletes only what the server acknowledges."""

from __future__ import annotations

import random

import orjson
import pytest

from vardkoll.collector.config import MqttConfig, PublisherConfig
from vardkoll.collector.outbox import Outbox
from vardkoll.collector.publisher import OFFLINE, Publisher

from .events import DEVICE, UNIT, offered_many
from .fakes import FakeClock, FakeMqttClient

MQTT = MqttConfig(url="mqtt://broker.test:1883")


def make(tmp_path, events=0, **config):
    outbox = Outbox(tmp_path / "outbox.db", unit=UNIT, device=DEVICE)
    outbox.add(offered_many(events))
    defaults = {"start_jitter_s": 0, "max_events_per_s": 1000, "batch_events": 100}
    clock, client = FakeClock(), FakeMqttClient()
    publisher = Publisher(
        outbox,
        UNIT,
        DEVICE,
        PublisherConfig(**{**defaults, **config}),
        MQTT,
        client=client,
        clock=clock,
        rng=random.Random(7),
        clock_state=lambda: True,
        version="test",
    )
    return outbox, publisher, client, clock


def ack(client, publisher, committed=(), rejected=(), refused=None):
    payload = {"v": 1, "committed": list(committed), "rejected": [{"id": i, "reason": r} for i, r in rejected], "batch_refused": refused}
    client.deliver(publisher.ack_topic, orjson.dumps(payload))


def ids_of(published):
    return [e["id"] for e in published.json()["events"]]


def test_client_is_set_up_with_a_retained_offline_will_and_subscribes_to_its_acks(tmp_path):
    _, publisher, client, _ = make(tmp_path)
    assert client.will.topic == f"vardkoll/v1/{UNIT}/{DEVICE}/status" and client.will.payload == OFFLINE and client.will.retain
    publisher.start()
    assert client.address == ("broker.test", 1883, 30) and client.started
    client.connect()
    assert client.subscriptions == [(f"vardkoll/v1/{UNIT}/{DEVICE}/ack", 1)]


def test_nothing_is_sent_before_connecting(tmp_path):
    _, publisher, client, clock = make(tmp_path, events=10)
    publisher.tick()
    assert client.published == []


def test_batches_go_oldest_first_on_the_events_topic_as_the_protocol_says(tmp_path):
    _, publisher, client, clock = make(tmp_path, events=250)
    client.connect()
    clock.advance(1)
    publisher.tick()
    batches = client.batches()
    assert [len(b.json()["events"]) for b in batches] == [100, 100, 50]
    assert batches[0].topic == f"vardkoll/v1/{UNIT}/{DEVICE}/events" and batches[0].qos == 1 and not batches[0].retain
    assert batches[0].json()["device"] == DEVICE
    assert ids_of(batches[0])[:2] == ["ev-0000000", "ev-0000001"]


def test_puback_alone_deletes_nothing_only_the_committed_ack_does(tmp_path):
    outbox, publisher, client, clock = make(tmp_path, events=30)
    client.connect()
    clock.advance(1)
    publisher.tick()
    client.puback_all()
    assert outbox.stats().depth == 30
    sent = ids_of(client.batches()[0])
    ack(client, publisher, committed=sent[:20], rejected=[(sent[20], "field 'call' must be a pseudonym")])
    assert outbox.stats().depth == 9
    assert outbox.stats().committed == 20 and outbox.stats().rejected == 1
    assert publisher.in_flight == 1  # nine still unacknowledged


def test_an_unacknowledged_batch_is_sent_again_after_the_timeout_with_back_off(tmp_path):
    outbox, publisher, client, clock = make(tmp_path, events=10, resend_after_s=30)
    client.connect()
    clock.advance(1)
    publisher.tick()
    ack(client, publisher, committed=[f"ev-{n:07d}" for n in range(4)])
    clock.advance(29)
    publisher.tick()
    assert len(client.batches()) == 1
    clock.advance(2)
    publisher.tick()
    assert len(client.batches()) == 2 and ids_of(client.batches()[1]) == [f"ev-{n:07d}" for n in range(4, 10)]
    clock.advance(31)  # second attempt waits 60 s
    publisher.tick()
    assert len(client.batches()) == 2
    clock.advance(30)
    publisher.tick()
    assert len(client.batches()) == 3 and publisher.stats.resends == 2


def test_a_refused_batch_deletes_nothing_and_is_counted(tmp_path):
    outbox, publisher, client, clock = make(tmp_path, events=5)
    client.connect()
    clock.advance(1)
    publisher.tick()
    ack(client, publisher, refused="device pi-test-01 is not registered for unit SE2321000016-15SF")
    assert outbox.stats().depth == 5 and publisher.stats.batches_refused == 1
    assert publisher.heartbeat()["publisher"]["batches_refused"] == 1


def test_in_flight_batches_are_bounded_while_the_server_is_silent(tmp_path):
    _, publisher, client, clock = make(tmp_path, events=2000, max_inflight_batches=3, max_events_per_s=100000)
    client.connect()
    for _ in range(5):
        clock.advance(1)
        publisher.tick()
    assert len(client.batches()) == 3


def test_drain_after_reconnect_waits_a_random_delay_then_keeps_to_the_rate(tmp_path):
    _, publisher, client, clock = make(tmp_path, events=5000, start_jitter_s=60, max_events_per_s=50, batch_events=100, max_inflight_batches=1000)
    client.connect()
    delay = publisher._not_before - clock.now
    assert 0 <= delay <= 60
    clock.advance(delay - 0.01)
    publisher.tick()
    assert client.batches() == []
    sent_by_second = []
    for _ in range(40):
        clock.advance(0.5)
        publisher.tick()
        sent_by_second.append(sum(len(b.json()["events"]) for b in client.batches()))
    assert sent_by_second[-1] <= 50 * 20 + 100  # 20 s at 50 events/s, plus at most one burst
    assert sent_by_second[-1] >= 50 * 20 - 100
    assert all(len(b.json()["events"]) == 100 for b in client.batches())  # throttling keeps full batches


def test_different_devices_start_their_drains_at_different_times(tmp_path):
    delays = set()
    for seed in range(5):
        _, publisher, client, clock = make(tmp_path / str(seed), start_jitter_s=60)
        publisher._rng = random.Random(seed)
        client.connect()
        delays.add(round(publisher._not_before - clock.now, 3))
    assert len(delays) == 5


def test_a_reconnect_sends_everything_unacknowledged_again(tmp_path):
    outbox, publisher, client, clock = make(tmp_path, events=150)
    client.connect()
    clock.advance(1)
    publisher.tick()
    ack(client, publisher, committed=ids_of(client.batches()[0]))
    client.drop()
    clock.advance(1)
    publisher.tick()
    before = len(client.batches())
    client.connect()
    clock.advance(1)
    publisher.tick()
    resent = client.batches()[before:]
    assert [i for b in resent for i in ids_of(b)] == [f"ev-{n:07d}" for n in range(100, 150)]


def test_heartbeat_is_retained_and_carries_outbox_clock_and_version(tmp_path):
    outbox, publisher, client, clock = make(tmp_path, events=3)
    client.connect()
    publisher.tick()
    status = [p for p in client.published if p.topic.endswith("/status")]
    assert len(status) == 1 and status[0].retain
    beat = status[0].json()
    assert beat["status"] == "online" and beat["version"] == "test" and beat["clock"] == {"ntp_synced": True}
    assert beat["outbox"]["depth"] == 3 and beat["outbox"]["dropped"] == 0 and beat["outbox"]["oldest_at"].startswith("2026-03-02T07:00:00")
    clock.advance(59)
    publisher.tick()
    assert len([p for p in client.published if p.topic.endswith("/status")]) == 1
    clock.advance(2)
    publisher.tick()
    assert len([p for p in client.published if p.topic.endswith("/status")]) == 2


def test_a_heartbeat_text_holding_a_personal_number_is_withheld_before_it_leaves(tmp_path):
    _, publisher, client, _ = make(tmp_path)
    publisher._status_extra = lambda: {
        "config": {"version": None, "state": "refused", "rejected": {"version": "7", "reason": "cannot read /srv/export/121212​-1212.csv"}}
    }
    client.connect()
    publisher.tick()
    beat = next(p for p in client.published if p.topic.endswith("/status")).json()
    assert beat["config"]["rejected"] == {"version": "7", "reason": "(text withheld: it holds what looks like a personal identity number)"}
    assert beat["status"] == "online" and beat["outbox"]["depth"] == 0


def test_clock_state_unknown_when_it_cannot_be_asked(tmp_path):
    _, publisher, _, _ = make(tmp_path)
    publisher._clock_state = lambda: None
    assert publisher.heartbeat()["clock"] == {"ntp_synced": "unknown"}


def test_stop_says_offline_before_disconnecting(tmp_path):
    _, publisher, client, _ = make(tmp_path)
    client.connect()
    publisher.stop()
    last = client.published[-1]
    assert (last.payload, last.retain) == (OFFLINE, True) and client.disconnected and client.stopped


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"committed": "oops"}', b'{"rejected": [1, 2]}'])
def test_a_malformed_acknowledgement_deletes_nothing_and_breaks_nothing(tmp_path, payload):
    outbox, publisher, client, clock = make(tmp_path, events=3)
    client.deliver(publisher.ack_topic, payload)
    assert outbox.stats().depth == 3


def test_next_due_names_when_the_token_bucket_lets_the_waiting_batch_go(tmp_path):
    _, publisher, client, clock = make(tmp_path, events=300, max_events_per_s=50, batch_events=100, heartbeat_interval_s=60)
    assert publisher.next_due() == float("inf")  # not connected: nothing is due
    client.connect()
    publisher.tick()  # heartbeat; the bucket starts empty
    assert client.batches() == []
    assert publisher.next_due() == pytest.approx(clock() + 2.0)  # 100 events at 50/s
    clock.advance(2.0)
    publisher.tick()
    assert len(client.batches()) == 1
    assert publisher.next_due() == pytest.approx(clock() + 2.0)


def test_an_acknowledgement_wakes_the_agent_to_send_the_next_batch(tmp_path):
    _, publisher, client, clock = make(tmp_path, events=300, max_inflight_batches=1)
    woken = []
    publisher.on_progress = lambda: woken.append(True)
    client.connect()
    assert woken == [True]  # the heartbeat is due at once
    clock.advance(1)
    publisher.tick()
    ack(client, publisher, committed=ids_of(client.batches()[0]))
    assert woken == [True, True]


def test_next_due_during_the_start_jitter_is_its_end(tmp_path):
    _, publisher, client, clock = make(tmp_path, events=10, start_jitter_s=20, heartbeat_interval_s=60)
    client.connect()
    publisher.tick()
    assert clock() < publisher.next_due() <= clock() + 20
    clock.now = publisher.next_due()
    publisher.tick()
    assert len(client.batches()) == 1
