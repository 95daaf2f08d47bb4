"""The personal-number guard (SPEC 3.2): one implementation for collector, bridge and server.

A Swedish personal identity number (personnummer) or coordination number (samordningsnummer) is
YYMMDD or YYYYMMDD, an optional separator, and four digits NNNC, where the date is valid (for a
coordination number the day is raised by 60) and C is the Luhn check digit over YYMMDDNNN. A
12-digit form needs a century people are born in (18, 19, 20).

The number counts however a person writes it (SPEC 3.2): text is first normalised (compatibility
forms, format characters dropped, every decimal digit of any script made ASCII, every dash and space
made `-` and ` `), then scanned. Between the date's parts and before NNNC there may be one to three
separators of `- + . /` and space ("12.12.12 - 1212", "1912 12 12--1212"). A candidate inside a
longer run of digits is not a personal number.

Pure ASCII text, the common case, skips the normalisation: `str.isascii` is one C call.

Nothing here ever returns, logs or formats the matched digits: callers learn *that* and *where*
(the field path), never *what*.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from typing import Any

__all__ = ["contains_personal_number", "find_personal_number", "raw_may_contain_personal_number"]

# The scan works on bytes. A "shape" maps every digit to "0", every separator to "s" (the dot to "p",
# which also marks a JSON fraction) and `e`/`E` to "f" (a JSON exponent); everything else to "x".
# bytes.translate and the search below run in C, so clean text costs almost nothing in Python.
# Bytes of non-ASCII characters become "u".
_DIGIT, _SEP, _DOT, _EXP, _OTHER, _NON_ASCII = 48, 115, 112, 102, 120, 117
_SEPARATORS = b"-+ /"
_SHAPE = bytes(
    _DIGIT if 48 <= b <= 57 else _SEP if b in _SEPARATORS else _DOT if b == 46 else _EXP if b in b"eE" else _NON_ASCII if b >= 128 else _OTHER
    for b in range(256)
)
# Every written form holds NNNC either right after the day (a run of six or more digits) or after a
# separator. Only there is a closer look worth its Python time; bytes.find is the fastest search.
_HINTS = (b"000000", b"s0000", b"p0000")
# The closer look, inside one stretch of digits and separators. Each part is a whole group of digits:
# a form is tried only where a digit group starts, and must end where one ends.
_GAP = rb"[-+ ./]{0,3}"
_DATE_10 = re.compile(rb"([0-9]{2})" + _GAP + rb"([0-9]{2})" + _GAP + rb"([0-9]{2})" + _GAP + rb"([0-9]{4})(?![0-9])")
_DATE_12 = re.compile(rb"(1[89]|20)([0-9]{2})" + _GAP + rb"([0-9]{2})" + _GAP + rb"([0-9]{2})" + _GAP + rb"([0-9]{4})(?![0-9])")
_GROUP_START = re.compile(rb"(?<![0-9])[0-9]")
# A field name is echoed in a path only when it looks like a name, not like data: three or more digits
# in a row could be part of the very number being refused.
_SAFE_NAME = re.compile(r"(?![A-Za-z0-9_]*[0-9]{3})[A-Za-z_][A-Za-z0-9_]{0,39}")
# Stretches already found NOT to hold a personal number (HSA-ids, dates and counters repeat on every
# event). Only negatives are remembered: a personal number is never kept, not even in memory.
_KNOWN_CLEAN: set[bytes] = set()
_KNOWN_CLEAN_MAX = 4096
_KNOWN_CLEAN_LONGEST = 64


def _scan(data: bytes, shape: bytes | None = None) -> bool:
    """True when ASCII-folded `data` holds a valid personal or coordination number in a written form."""
    if shape is None:
        shape = data.translate(_SHAPE)
    run, dash, dot = _HINTS
    return (
        _number_near(data, shape, run)  # found in most events (an HSA-id): no `in` first
        or (dash in shape and _number_near(data, shape, dash))
        or (dot in shape and _number_near(data, shape, dot))
    )


def _stretch_around(shape: bytes, at: int) -> tuple[int, int]:
    """The stretch around `at`: from one "x" to the next (an exponent's "e" may sit inside; the forms,
    which read digits and separators only, stop there)."""
    end = shape.find(b"x", at)
    return shape.rfind(b"x", 0, at) + 1, len(shape) if end == -1 else end


def _number_near(data: bytes, shape: bytes, hint: bytes) -> bool:
    """Look closer at each stretch of `data` around `hint`."""
    at = shape.find(hint)
    while at != -1:
        end = shape.find(b"x", at)
        if end == -1:
            end = len(shape)
        stretch = data[shape.rfind(b"x", 0, at) + 1 : end]
        if stretch not in _KNOWN_CLEAN:
            if _stretch_holds_number(stretch):
                return True
            _remember_clean(stretch)
        at = shape.find(hint, end)
    return False


def _folded_stretches_hold_number(raw: bytes, shape: bytes) -> bool:
    """Fold and scan each stretch of UTF-8 `raw` that holds a non-ASCII character. Every character of
    a written number is a digit, a separator or non-ASCII (a digit of another script, a dash, a format
    character), so the number lies inside one such stretch; its ASCII ends fold to themselves."""
    at = shape.find(b"u")
    while at != -1:
        start, end = _stretch_around(shape, at)
        stretch = raw[start:end]
        if stretch not in _KNOWN_CLEAN:
            if _scan(_fold(stretch.decode("utf-8", "replace"))):
                return True
            _remember_clean(stretch)
        at = shape.find(b"u", end)
    return False


def _remember_clean(stretch: bytes) -> None:
    if len(stretch) > _KNOWN_CLEAN_LONGEST:  # a sender's long stretches must not fill memory
        return
    if len(_KNOWN_CLEAN) >= _KNOWN_CLEAN_MAX:
        _KNOWN_CLEAN.clear()
    _KNOWN_CLEAN.add(stretch)


def _stretch_holds_number(stretch: bytes) -> bool:
    for group in _GROUP_START.finditer(stretch):
        at = group.start()
        long_form = _DATE_12.match(stretch, at)
        if long_form is not None:
            century, yy, month, day, tail = long_form.groups()
            if _is_personal_number(int(century + yy), yy + month + day, tail):
                return True
        short_form = _DATE_10.match(stretch, at)
        if short_form is not None:
            yy, month, day, tail = short_form.groups()
            if _is_personal_number(None, yy + month + day, tail):
                return True
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


def _is_personal_number(year: int | None, short_date: bytes, tail: bytes) -> bool:
    yy, month, day = int(short_date[0:2]), int(short_date[2:4]), int(short_date[4:6])
    return _valid_date(year, yy, month, day) and _luhn_ok(short_date + tail)


class _Folding(dict[int, Any]):
    """str.translate table, filled on first sight of each character: decimal digits of every script
    become ASCII digits, spaces and dashes become ' ' and '-', format characters and combining marks
    (which can sit invisibly between digits) are dropped, everything else stays."""

    _LIMIT = 65536  # distinct characters remembered; an attacker's fresh ones are folded, not kept

    def __missing__(self, code: int) -> Any:
        char = chr(code)
        category = unicodedata.category(char)
        folded: Any = code
        if category == "Nd":
            folded = 48 + unicodedata.decimal(char)
        elif category in ("Cf", "Mn", "Me"):
            folded = None
        elif category == "Zs":
            folded = 32
        elif category == "Pd" or char in "\u2212\u2796":  # minus sign, heavy minus
            folded = 45
        elif char in "\u2044\u2215\u29f8":  # fraction, division and big solidus
            folded = 47
        elif char in "\u00b7\u2022\u2024\u2027\u2219\u30fb":  # middle dots and bullets
            folded = 46
        if len(self) < self._LIMIT:
            self[code] = folded
        return folded


_FOLDING = _Folding()


def _fold(text: str) -> bytes:
    """`text` as a person reads it: NFKC (full-width and circled digits, ligatures), then the folding
    above, as UTF-8 bytes for the scan."""
    return unicodedata.normalize("NFKC", text).translate(_FOLDING).encode("utf-8", "surrogatepass")


def contains_personal_number(text: str) -> bool:
    """True when `text` holds a valid personal identity or coordination number in any written form."""
    if text.isascii():
        return _scan(text.encode("ascii"))
    return _scan(_fold(text))


def raw_may_contain_personal_number(raw: bytes) -> bool:
    """Fast pre-check on an undecoded JSON document.

    False means the decoded document cannot hold a personal number; True means the caller must look
    properly with `find_personal_number` (a valid number was seen, or an escape could hide one).
    """
    if b"\\" in raw and (b"\\u" in raw or b"\\/" in raw):  # an escaped digit or separator reads otherwise decoded
        return True
    shape = raw.translate(_SHAPE)
    if raw.isascii():
        if _scan(raw, shape):
            return True
    elif _scan(raw, shape.replace(b"u", b"x")) or _folded_stretches_hold_number(raw, shape):
        return True
    return _number_may_print_otherwise(raw, shape)


def _number_may_print_otherwise(raw: bytes, shape: bytes) -> bool:
    """True when `raw` may hold a JSON number whose decoded value prints other digits than its text:
    one with a fraction or an exponent (shape "0p" or "0f"), or more digits than 64 bits hold, which
    orjson reads as a float. "1.212121212e9" decodes to 1212121212.0, and `find_personal_number`
    checks str(value). A number token follows '[', ',' or a key's ':' (not the ':' of a time, after a
    digit); anything else that merely looks so is a false alarm, which only costs the slow walk."""
    for marker in (b"0p", b"0f", b"0000000000000000000"):
        if marker == b"0p" and 112 not in shape:  # no "." at all: a search for "0p" would visit every digit
            continue
        at = shape.find(marker)
        while at != -1:
            start = at
            while start > 0 and shape[start - 1] == _DIGIT:
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
