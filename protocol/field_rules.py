"""The character rules of ids, HSA-ids, device ids and pseudonyms, checked after msgspec decodes an event.

The event structs call these from `__post_init__`. A broken rule raises ValueError("rule:<field>"),
which msgspec reports with the path of the struct; `protocol.validation` turns that into a reason
naming the field. Values are never part of the message.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

# msgspec-free checks use re.search like msgspec did, so "$" would also match before a final newline:
# "(?!\n)" closes that gap and still reads as an ECMA-262 pattern in the exported JSON Schema.
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$(?!\n)"
HSA_ID_PATTERN = r"^SE([0-9]{10}|[0-9]{12})-[0-9A-Za-z]{1,24}$(?!\n)"
PSEUDONYM_PATTERN = r"^[A-Za-z0-9_-]{6,64}$(?!\n)"
DEVICE_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$(?!\n)"

RULE_PREFIX = "rule:"

# A plausible `at`: nothing the service counts happened before 2000, and a far-future time (year 9999)
# overflowed local dates downstream. The server narrows the upper end to its receive time plus a clock
# skew (server/ingest/prepare.py); this bound holds everywhere, replay included.
EARLIEST_AT = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_AT = datetime(2100, 1, 1, tzinfo=timezone.utc)

# The same rules in words, for people who type these values (API, admin CLI, config files).
HSA_ID_RULE = "must be an HSA-id: SE, a 10- or 12-digit organisation number, '-', 1–24 letters or digits (e.g. SE2321000016-15SF)"
DEVICE_ID_RULE = "must be 1–64 characters of A–Z, a–z, 0–9 and . _ -"

_event_id = re.compile(EVENT_ID_PATTERN).search
_hsa_id = re.compile(HSA_ID_PATTERN).search
_pseudonym = re.compile(PSEUDONYM_PATTERN).search
_device_id = re.compile(DEVICE_ID_PATTERN).search


def is_hsa_id(value: str) -> bool:
    return _hsa_id(value) is not None


def is_device_id(value: str) -> bool:
    return _device_id(value) is not None


# Units and devices repeat on every event: once a value has passed, a set lookup answers. Only values
# that passed are kept (an HSA-id or a device id is not personal data), and each set is bounded.
_GOOD_UNITS: set[str] = set()
_GOOD_DEVICES: set[str] = set()
_KNOWN_GOOD_MAX = 4096


def _remember(known: set[str], value: str) -> None:
    if len(known) >= _KNOWN_GOOD_MAX:
        known.clear()
    known.add(value)


# Any offset is less than a day, so a time whose own year is 2001–2098 lies inside [EARLIEST_AT, LATEST_AT).
# Reading the year costs a twentieth of comparing two aware datetimes of different offsets (about 1 µs,
# the largest part of checking an event); other years are compared exactly.
_SURELY_PLAUSIBLE_YEARS = range(EARLIEST_AT.year + 1, LATEST_AT.year - 1)


def is_plausible_at(at: datetime) -> bool:
    return at.year in _SURELY_PLAUSIBLE_YEARS or EARLIEST_AT <= at < LATEST_AT


# The id and the pseudonyms of an event checked in one regular expression: joined by "\n", which none of
# them may hold, and with exactly as many parts as values, so a value with a "\n" of its own never
# passes. Any failure goes through `_check_in_order` for the first broken rule in the usual order.
_ID_CHARS, _PSEUDONYM_CHARS = r"[A-Za-z0-9._:-]{1,64}", r"[A-Za-z0-9_-]{6,64}"
MAX_PSEUDONYM_FIELDS = 7
_ID_AND_PSEUDONYMS = [re.compile(_ID_CHARS + (r"\n" + _PSEUDONYM_CHARS) * count).fullmatch for count in range(MAX_PSEUDONYM_FIELDS + 1)]


def check_event(event: Any) -> None:
    """The id, `at`, the unit, the device and every field the event's class lists in `pseudonym_fields`
    (None where a field is optional is fine). One function on the hot path of every decode: the common
    case (a plausible year, a unit and device seen before) costs 0.4 of checking each rule on its own."""
    device = event.device
    if event.at.year in _SURELY_PLAUSIBLE_YEARS and event.unit in _GOOD_UNITS and (device is None or device in _GOOD_DEVICES):
        values = event.id_and_pseudonyms(event)  # an operator.attrgetter: a tuple of strings, or None for an optional field
        if None in values:  # an optional pseudonym left out, which is fine
            values = tuple([value for value in values if value is not None])
        if _ID_AND_PSEUDONYMS[len(values) - 1]("\n".join(values)) is not None:
            return
    _check_in_order(event)


def _check_in_order(event: Any) -> None:
    """Each rule on its own, in this order: the first broken one names the field."""
    if _event_id(event.id) is None:
        raise ValueError(RULE_PREFIX + "id")
    if not is_plausible_at(event.at):
        raise ValueError(RULE_PREFIX + "at")
    unit = event.unit
    if unit not in _GOOD_UNITS:
        if _hsa_id(unit) is None:
            raise ValueError(RULE_PREFIX + "unit")
        _remember(_GOOD_UNITS, unit)
    device = event.device
    if device is not None and device not in _GOOD_DEVICES:
        if _device_id(device) is None:
            raise ValueError(RULE_PREFIX + "device")
        _remember(_GOOD_DEVICES, device)
    check_pseudonyms(event)


def check_pseudonyms(struct: Any) -> None:
    """Every field the struct's class lists in `pseudonym_fields` (None where optional is fine)."""
    for name in struct.pseudonym_fields:
        value = getattr(struct, name)
        if value is not None and _pseudonym(value) is None:
            raise ValueError(RULE_PREFIX + name)
