"""The personal-number guard (SPEC 3.2): one implementation for collector, bridge and server.

A Swedish personal identity number (personnummer) or coordination number (samordningsnummer) is
YYMMDD or YYYYMMDD, an optional separator, and four digits NNNC, where the date is valid (for a
coordination number the day is raised by 60) and C is the Luhn check digit over YYMMDDNNN.

Besides `-` and `+` (SPEC), a single space is treated as a separator too: "121212 1212" is a common
way to write a number by hand and must not slip through.

Nothing here ever returns, logs or formats the matched digits: callers learn *that* and *where*
(the field path), never *what*.
"""

from __future__ import annotations

import calendar
import re
from typing import Any

__all__ = ["contains_personal_number", "find_personal_number", "raw_may_contain_personal_number"]

# The scan works on bytes: every digit becomes "0" and every separator "s" (bytes.translate, which runs
# in C), so digit runs are found with bytes.find instead of a regular expression, which is several
# times slower on the hot path of replay and ingest. Only ASCII digits count.
_SEPARATORS = b"-+ "
_SHAPE = bytes(48 if 48 <= b <= 57 else 115 if b in _SEPARATORS else 102 if b in b".eE" else 46 for b in range(256))
_RUN_START = b"000000"
# A field name is echoed in a path only when it looks like a name, not like data: three or more digits
# in a row could be part of the very number being refused.
_SAFE_NAME = re.compile(r"(?![A-Za-z0-9_]*[0-9]{3})[A-Za-z_][A-Za-z0-9_]{0,39}")
_CENTURIES = (b"18", b"19", b"20")
# Digit strings already found NOT to be personal numbers (HSA-ids, counters repeat on every event).
# Only negatives are remembered: a personal number is never kept, not even in memory.
_KNOWN_CLEAN: set[bytes] = set()
_KNOWN_CLEAN_MAX = 4096


def _scan(data: bytes, shape: bytes | None = None) -> bool:
    """True when `data` holds a valid personal or coordination number in one of its written forms:
    YYMMDDNNNC or YYYYMMDDNNNC, either with an optional -, + or space before NNNC. A candidate may not
    sit inside a longer run of digits."""
    if shape is None:
        shape = data.translate(_SHAPE)
    size = len(shape)
    start = shape.find(_RUN_START)
    while start != -1:
        end = start + 6
        while end < size and shape[end] == 48:
            end += 1
        run = end - start
        if run in (10, 12):
            digits = data[start:end]
            if digits not in _KNOWN_CLEAN:
                if _is_personal_number(digits[:-4], digits[-4:]):
                    return True
                if len(_KNOWN_CLEAN) >= _KNOWN_CLEAN_MAX:
                    _KNOWN_CLEAN.clear()
                _KNOWN_CLEAN.add(digits)
        elif run in (6, 8) and shape[end + 1 : end + 5] == b"0000" and end < size and shape[end] == 115:
            if (end + 5 == size or shape[end + 5] != 48) and _is_personal_number(data[start:end], data[end + 1 : end + 5]):
                return True
        start = shape.find(_RUN_START, end)
    return False


def _valid_date(year: int | None, yy: int, month: int, day: int) -> bool:
    if day > 60:  # coordination number
        day -= 60
    if not (1 <= month <= 12 and day >= 1):
        return False
    years = (year,) if year is not None else (1900 + yy, 2000 + yy)
    return any(day <= calendar.monthrange(y, month)[1] for y in years)


def _luhn_ok(ten_digits: bytes) -> bool:
    total = 0
    for index, byte in enumerate(ten_digits):
        digit = byte - 48
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _is_personal_number(date_part: bytes, tail: bytes) -> bool:
    if len(date_part) == 8:
        if date_part[:2] not in _CENTURIES:
            return False
        year: int | None = int(date_part[:4])
        short = date_part[2:]
    else:
        year = None
        short = date_part
    yy, month, day = int(short[0:2]), int(short[2:4]), int(short[4:6])
    return _valid_date(year, yy, month, day) and _luhn_ok(short + tail)


def contains_personal_number(text: str) -> bool:
    """True when `text` holds a valid personal identity or coordination number in any written form."""
    return _scan(text.encode("utf-8", "surrogatepass"))


def raw_may_contain_personal_number(raw: bytes) -> bool:
    """Fast pre-check on an undecoded JSON document.

    False means the decoded document cannot hold a personal number; True means the caller must look
    properly with `find_personal_number` (a valid number was seen, or a \\u escape could hide one).
    """
    if b"\\u" in raw:
        return True
    shape = raw.translate(_SHAPE)
    if _scan(raw, shape):
        return True
    return _number_may_print_otherwise(raw, shape)


def _number_may_print_otherwise(raw: bytes, shape: bytes) -> bool:
    """True when `raw` may hold a JSON number whose decoded value prints other digits than its text:
    one with a fraction or an exponent (shape "0f"), or more digits than 64 bits hold, which orjson
    reads as a float. "1.212121212e9" decodes to 1212121212.0, and `find_personal_number` checks
    str(value). A number token follows '[', ',' or a key's ':' (not the ':' of a time, after a digit);
    anything else that merely looks so is a false alarm, which only costs the slow walk."""
    for marker in (b"0f", b"0000000000000000000"):
        at = shape.find(marker)
        while at != -1:
            start = at
            while start > 0 and shape[start - 1] == 48:
                start -= 1
            if start > 0 and raw[start - 1] == 45:  # a minus sign
                start -= 1
            while start > 0 and raw[start - 1] in b" \t\n\r":
                start -= 1
            before = raw[start - 1] if start > 0 else 0
            if before in b",[" or (before == 58 and not (start > 1 and 48 <= raw[start - 2] <= 57)):
                return True
            at = shape.find(marker, at + len(marker))
    return False


def find_personal_number(value: Any, path: str = "") -> str | None:
    """Walk a decoded JSON value; return the path of the first string, key or number that holds a
    personal number (e.g. ``"doctors[2].doctor"``), or None. Numbers count too: a number written
    without quotes is no less personal.

    The walk uses an explicit stack, not recursion: a deeply nested document (orjson allows 1024
    levels) must be refused or passed, never crash the guard with RecursionError."""
    # Entries are (is_key, item, path), popped depth first in document order: a key before its value.
    stack: list[tuple[bool, Any, str]] = [(False, value, path)]
    while stack:
        is_key, item, where = stack.pop()
        if is_key:
            if contains_personal_number(item):
                return (where + "." if where else "") + "(a field name)"
        elif isinstance(item, str):
            if contains_personal_number(item):
                return where or "(value)"
        elif isinstance(item, dict):
            children: list[tuple[bool, Any, str]] = []
            for key, child in item.items():
                key_text = str(key)
                # Unknown field names are echoed only when they look like field names, not like data.
                shown = key_text if _SAFE_NAME.fullmatch(key_text) else "(a field)"
                children.append((True, key_text, where))
                children.append((False, child, f"{where}.{shown}" if where else shown))
            stack.extend(reversed(children))
        elif isinstance(item, (list, tuple)):
            stack.extend((False, child, f"{where}[{index}]") for index, child in reversed(list(enumerate(item))))
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            if contains_personal_number(str(item)):
                return where or "(value)"
    return None
