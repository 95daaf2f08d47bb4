"""MQTT topic names (SPEC 3.3). Every topic is `{prefix}/{unit}/{device}/{leaf}`."""

from __future__ import annotations

from dataclasses import dataclass

from .field_rules import DEVICE_ID_RULE, HSA_ID_RULE, is_device_id, is_hsa_id

DEFAULT_PREFIX = "vardkoll/v1"
EVENTS = "events"
STATUS = "status"
ACK = "ack"
CONFIG = "config"


def events_topic(unit: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{unit}/{device}/{EVENTS}"


def status_topic(unit: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{unit}/{device}/{STATUS}"


def ack_topic(unit: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Where the server confirms which events of a batch are committed (or refused, with reasons)."""
    return f"{prefix}/{unit}/{device}/{ACK}"


def config_topic(unit: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Where a device's remote config document waits, retained (docs/collector.md, "Remote config")."""
    return f"{prefix}/{unit}/{device}/{CONFIG}"


def events_subscription(prefix: str = DEFAULT_PREFIX, share_group: str | None = None) -> str:
    """The server's subscription to every device's events; shared (MQTT v5) when a group is given."""
    topic = f"{prefix}/+/+/{EVENTS}"
    return f"$share/{share_group}/{topic}" if share_group else topic


@dataclass(frozen=True, slots=True)
class TopicAddress:
    unit: str
    device: str
    leaf: str


def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> TopicAddress | None:
    """Split a device topic into unit, device and leaf; None when it is not one of ours."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return TopicAddress(*parts)


def topic_problem(address: TopicAddress) -> str | None:
    """Why a device topic's unit or device cannot be one (None when both are fine). A unit too long for
    the database once failed every later commit; the broker's ACLs keep enrolled devices to their own
    topics, but a broker run without them (dev, manual accounts) does not."""
    if not is_hsa_id(address.unit):
        return f"the unit in the topic {HSA_ID_RULE}"
    if not is_device_id(address.device):
        return f"the device in the topic {DEVICE_ID_RULE}"
    return None


def device_client_id(unit: str, device: str) -> str:
    """The MQTT client id of a collector: its broker account is bound to it, so no other account (and
    no server process, `vardkoll-server-…`) can connect under it, nor it under theirs. Unique across
    units, unlike the device id alone."""
    return f"{unit}/{device}"
