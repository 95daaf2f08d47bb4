"""Turn untrusted input into typed events, or into a reason a person can act on.

Order of checks: size, personal numbers (before anything could echo a value), JSON, then the schema.
Reasons name the field and the rule and never repeat the offending value, so they are safe to store
and log.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

from .events import EVENT_DECODER, EVENT_TYPES, EventBase, allowed_values
from .field_rules import EARLIEST_AT, EVENT_ID_PATTERN, LATEST_AT, RULE_PREFIX
from .personal_number import find_personal_number, raw_may_contain_personal_number

MAX_EVENT_BYTES = 64 * 1024
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_TOO_DEEP = "event is nested too deeply"


class EventRejected(ValueError):
    """An event that cannot be counted; `reason` says why and is safe to show and store."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id  # when the event's own id could be read and is well formed: the sender may drop it


_FIELD_RULES = {
    "id": "must be 1–64 characters of A–Z, a–z, 0–9 and . _ : -",
    "unit": "must be an HSA-id (SE, a 10- or 12-digit organisation number, '-', 1–24 letters or digits)",
    "device": "must be 1–64 characters of A–Z, a–z, 0–9 and . _ -",
    "at": f"must be a time from {EARLIEST_AT:%Y-%m-%d} up to (not including) {LATEST_AT:%Y-%m-%d}",
    "slot": f"must be a time from {EARLIEST_AT:%Y-%m-%d} up to (not including) {LATEST_AT:%Y-%m-%d}",
}
_PSEUDONYM_RULE = "must be a pseudonym: 6–64 characters of A–Z, a–z, 0–9, _ and -"
_SAFE_TYPE = re.compile(r"[a-z_]{1,20}\.[a-z_]{1,30}")
_MESSAGE = re.compile(r"^(?P<text>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_TYPE_NAMES = {"bool": "true or false", "int": "a whole number", "str": "a string", "array": "a list", "object": "an object"}


def _describe(message: str, event_type: str | None) -> str:
    """Reword one msgspec validation message as a rule about a named field."""
    parts = _MESSAGE.match(message)
    assert parts is not None, "the pattern matches any message"
    text, path = parts["text"], (parts["path"] or "").lstrip(".")
    name = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if text.startswith(RULE_PREFIX):  # a character rule broken, found by protocol.field_rules
        name = text[len(RULE_PREFIX) :]
        return f"field '{path + '.' if path else ''}{name}' {_FIELD_RULES.get(name, _PSEUDONYM_RULE)}"
    if text.startswith("Object missing required field"):
        missing = text.split("`")[1]
        return f"missing field '{path + '.' if path else ''}{missing}'"
    if not path:
        return "event must be an object" if text.startswith("Expected `object`") else text
    if name == "type" and text.startswith("Invalid value"):
        tag = text.split("'")[1] if text.count("'") >= 2 else ""
        shown = f" '{tag}'" if _SAFE_TYPE.fullmatch(tag) else ""
        return f"unknown type{shown}; expected one of: {', '.join(EVENT_TYPES)}"
    if name == "type":
        return "field 'type' must be a string naming an event type"
    if name == "v":
        return "unsupported protocol version: field 'v' must be 1"
    if "timezone component" in text:
        return f"field '{path}': time needs an offset (e.g. +01:00 or Z)"
    if "datetime" in text:
        return f"field '{path}' must be an RFC 3339 time such as 2026-03-02T08:00:00+01:00"
    if text.startswith("Invalid enum value"):
        return f"field '{path}' must be one of: {', '.join(allowed_values(event_type or '', name))}"
    if "of length <=" in text:
        return f"field '{path}' is too long (at most {text.rsplit('<=', 1)[1].strip()} characters)"
    if ">= 0" in text:
        return f"field '{path}' must be 0 or more"
    if "<= " in text and "`int`" in text:
        return f"field '{path}' must be at most {text.rsplit('<=', 1)[1].strip()}"
    if "matching regex" in text and name == "queue":
        return f"field '{path}' must not hold control characters"
    if text.startswith("Expected `"):
        expected = text.split("`")[1].split(" ")[0]
        if expected in _TYPE_NAMES:
            return f"field '{path}' must be {_TYPE_NAMES[expected]}"
    return f"field '{path}': {text}"


def _event_type_of(line: bytes) -> str | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def parse_event_line(line: bytes) -> EventBase:
    """Parse and validate one JSON document holding one event."""
    if len(line) > MAX_EVENT_BYTES:
        raise EventRejected(f"event is larger than {MAX_EVENT_BYTES} bytes")
    if raw_may_contain_personal_number(line):
        try:
            decoded = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise EventRejected(f"not valid JSON: {exc}") from None
        _refuse_personal_numbers(decoded)
    try:
        return EVENT_DECODER.decode(line)
    except msgspec.ValidationError as exc:
        raise EventRejected(_describe(str(exc), _event_type_of(line))) from None
    except msgspec.DecodeError as exc:
        raise EventRejected(f"not valid JSON: {exc}") from None
    except RecursionError:  # msgspec descends into ignored fields too, on the Python stack
        raise EventRejected(_TOO_DEEP) from None


def validate_event(obj: Any) -> EventBase:
    """Validate one already decoded event (e.g. an element of a batch)."""
    if not isinstance(obj, dict):
        raise EventRejected("event must be an object")
    _refuse_personal_numbers(obj)
    try:
        encoded = orjson.dumps(obj)
    except (orjson.JSONEncodeError, RecursionError):
        raise EventRejected(_TOO_DEEP) from None
    event_id = obj.get("id")
    readable_id = event_id if isinstance(event_id, str) and _EVENT_ID.search(event_id) else None
    if len(encoded) > MAX_EVENT_BYTES:
        raise EventRejected(f"event is larger than {MAX_EVENT_BYTES} bytes", readable_id)
    try:
        return EVENT_DECODER.decode(encoded)
    except msgspec.ValidationError as exc:
        kind = obj.get("type")
        raise EventRejected(_describe(str(exc), kind if isinstance(kind, str) else None), readable_id) from None
    except (msgspec.DecodeError, TypeError) as exc:
        raise EventRejected(f"event cannot be read: {exc}") from None
    except RecursionError:
        raise EventRejected(_TOO_DEEP) from None


def _refuse_personal_numbers(decoded: Any) -> None:
    where = find_personal_number(decoded)
    if where:
        raise EventRejected(f"contains a personal identity number (field '{where}'); the event was refused")
