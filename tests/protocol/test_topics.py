"""MQTT topic names (SPEC 3.3): `{prefix}/{unit}/{device}/{leaf}` under the default prefix `vardkoll/v1`."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vardkoll.protocol.topics import (
    ACK,
    DEFAULT_PREFIX,
    EVENTS,
    STATUS,
    TopicAddress,
    ack_topic,
    events_subscription,
    events_topic,
    parse_topic,
    status_topic,
)

UNIT = "SE2321000016-VC01"
DEVICE = "collector-1"


def test_default_prefix_and_leaves_are_as_specified():
    assert DEFAULT_PREFIX == "vardkoll/v1"
    assert (EVENTS, STATUS, ACK) == ("events", "status", "ack")


def test_events_topic_is_prefix_unit_device_events():
    assert events_topic(UNIT, DEVICE) == "vardkoll/v1/SE2321000016-VC01/collector-1/events"


def test_status_topic_is_prefix_unit_device_status():
    assert status_topic(UNIT, DEVICE) == "vardkoll/v1/SE2321000016-VC01/collector-1/status"


def test_ack_topic_is_prefix_unit_device_ack():
    assert ack_topic(UNIT, DEVICE) == "vardkoll/v1/SE2321000016-VC01/collector-1/ack"


def test_topics_follow_a_configured_prefix():
    assert events_topic(UNIT, DEVICE, prefix="region/test") == "region/test/SE2321000016-VC01/collector-1/events"
    assert status_topic(UNIT, DEVICE, prefix="region/test") == "region/test/SE2321000016-VC01/collector-1/status"
    assert ack_topic(UNIT, DEVICE, prefix="region/test") == "region/test/SE2321000016-VC01/collector-1/ack"


def test_events_subscription_matches_every_unit_and_device():
    assert events_subscription() == "vardkoll/v1/+/+/events"
    assert events_subscription(prefix="region/test") == "region/test/+/+/events"


def test_shared_subscription_uses_the_mqtt5_share_syntax():
    assert events_subscription(share_group="vardkoll-server") == "$share/vardkoll-server/vardkoll/v1/+/+/events"
    assert events_subscription("region/test", "g1") == "$share/g1/region/test/+/+/events"


def test_no_share_group_means_a_plain_subscription():
    assert events_subscription(share_group=None) == events_subscription(share_group="") == "vardkoll/v1/+/+/events"


@pytest.mark.parametrize(("make", "leaf"), [(events_topic, "events"), (status_topic, "status"), (ack_topic, "ack")])
def test_parse_topic_round_trips(make, leaf):
    assert parse_topic(make(UNIT, DEVICE)) == TopicAddress(unit=UNIT, device=DEVICE, leaf=leaf)


@pytest.mark.parametrize(("make", "leaf"), [(events_topic, "events"), (status_topic, "status"), (ack_topic, "ack")])
def test_parse_topic_round_trips_under_a_configured_prefix(make, leaf):
    topic = make(UNIT, DEVICE, prefix="region/test")
    assert parse_topic(topic, prefix="region/test") == TopicAddress(UNIT, DEVICE, leaf)
    assert parse_topic(topic) is None  # not under the default prefix


hsa_ids = st.from_regex(r"SE([0-9]{10}|[0-9]{12})-[0-9A-Za-z]{1,24}", fullmatch=True)
device_ids = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)


@given(hsa_ids, device_ids, st.sampled_from([events_topic, status_topic, ack_topic]))
def test_parse_topic_round_trips_for_any_valid_unit_and_device(unit, device, make):
    parsed = parse_topic(make(unit, device))
    assert parsed is not None
    assert (parsed.unit, parsed.device) == (unit, device)
    assert make(parsed.unit, parsed.device) == make(unit, device)


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/SE2321000016-VC01/collector-1/events",  # foreign prefix
        "vardkoll/v2/SE2321000016-VC01/collector-1/events",  # other protocol version
        "vardkoll/v1x/SE2321000016-VC01/collector-1/events",  # prefix only as a substring
        "xvardkoll/v1/SE2321000016-VC01/collector-1/events",
        "/vardkoll/v1/SE2321000016-VC01/collector-1/events",
        "vardkoll/v1",
        "vardkoll/v1/",
        "vardkoll/v1/SE2321000016-VC01",
        "vardkoll/v1/SE2321000016-VC01/collector-1",  # no leaf
        "vardkoll/v1/SE2321000016-VC01/collector-1/events/extra",  # too deep
        "vardkoll/v1/SE2321000016-VC01/collector-1/events/",  # trailing slash
        "vardkoll/v1//collector-1/events",  # empty unit
        "vardkoll/v1/SE2321000016-VC01//events",  # empty device
        "vardkoll/v1/SE2321000016-VC01/collector-1/",  # empty leaf
        "$share/g1/vardkoll/v1/SE2321000016-VC01/collector-1/events",
        "",
    ],
)
def test_parse_topic_rejects_foreign_or_malformed_topics(topic):
    assert parse_topic(topic) is None


def test_topic_address_is_an_immutable_value():
    address = TopicAddress(UNIT, DEVICE, EVENTS)
    assert address == TopicAddress(unit=UNIT, device=DEVICE, leaf="events")
    assert hash(address) == hash(TopicAddress(UNIT, DEVICE, EVENTS))
    with pytest.raises(dataclasses.FrozenInstanceError):
        address.unit = "SE162321000016-X"
