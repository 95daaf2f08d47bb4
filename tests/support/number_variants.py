"""Unicode variants of Skatteverket's test numbers, as a person (or an attacker) may write them.

Only the published test numbers are used: 19121212-1212 / 121212-1212 and the coordination number
19610973-2393 / 610973-2393. Each variant is built from their digits: every digit may be written in
any script that has a decimal digit of that value, or in a compatibility form (full-width,
superscript, circled, mathematical); separators a person types go between the date's parts and
before the last four; format characters (zero-width space, joiner, soft hyphen, ...) may sit
anywhere between the characters.
"""

from __future__ import annotations

import sys
import unicodedata

from hypothesis import strategies as st

TEST_NUMBERS = ("191212121212", "196109732393")  # the two published numbers, 12 digits
ISSUE_FORMS = [  # the forms issue 12 found stored, all of a test number
    "１９１２１２１２－１２１２",  # full-width, 12 digits
    "１２１２１２－１２１２",  # full-width, 10 digits
    "121２12-1212",  # one full-width digit among ASCII ones
    "١٢١٢١٢-١٢١٢",  # Arabic-Indic
    "121212\u200b-1212",  # zero-width space before the dash
    "12\u200b1212-1212",  # zero-width space between digits
    "1212\u200d12-1212",  # zero-width joiner
    "121212\u00ad1212",  # soft hyphen
    "121212\u00a01212",  # no-break space
    "121212\u20131212",  # en dash
    "121212.1212",
    "121212/1212",
    "121212--1212",
    "12 12 12-1212",  # spaces inside the date
    "1912 12 12 - 1212",
    "610973\u20132393",
]


def _all_characters() -> list[str]:
    return [chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code <= 0xDFFF]


_CHARACTERS = _all_characters()
# For each ASCII digit: every character read as that digit (a decimal digit of any script, or one whose
# compatibility form is exactly the digit).
DIGIT_FORMS: dict[str, list[str]] = {d: [] for d in "0123456789"}
for _char in _CHARACTERS:
    if unicodedata.category(_char) == "Nd":
        DIGIT_FORMS[str(unicodedata.decimal(_char))].append(_char)
    elif unicodedata.normalize("NFKC", _char) in DIGIT_FORMS:
        DIGIT_FORMS[unicodedata.normalize("NFKC", _char)].append(_char)
FORMAT_CHARACTERS = [c for c in _CHARACTERS if unicodedata.category(c) == "Cf"]
SEPARATORS = [
    " ",
    "-",
    "+",
    ".",
    "/",
    "\u00a0",
    "\u2009",
    "\u202f",
    "\u3000",  # no-break, thin, narrow no-break, ideographic space
    "\u2010",
    "\u2011",
    "\u2012",
    "\u2013",
    "\u2014",
    "\u2212",
    "\ufe63",
    "\uff0d",  # hyphens, dashes, minus
    "\uff0e",
    "\uff0f",
    "\u2044",  # full-width full stop and solidus, fraction slash
]


def reads_as_no_digit(char: str) -> bool:
    """Neither a digit of any script nor a character whose compatibility form holds one."""
    return not any(unicodedata.category(c) == "Nd" for c in unicodedata.normalize("NFKC", char))


def digit_form(digit: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(digit), st.sampled_from(DIGIT_FORMS[digit]))


format_characters = st.sampled_from(FORMAT_CHARACTERS)
separator_runs = st.lists(st.sampled_from(SEPARATORS), max_size=2).map("".join)
tail_separator_runs = st.one_of(separator_runs, st.sampled_from([" - ", " – ", "--", "  "]))
# Text around a number: nothing in it reads as a digit, and it ends in a letter so that the number's
# own separators stay its own (a space before "12 12 12" is text, not part of the number).
surrounding_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)).filter(reads_as_no_digit), max_size=12)


@st.composite
def written(draw: st.DrawFn, digits: str, gaps: tuple[int, ...] | None = None) -> str:
    """`digits` (10 or 12) written with per-digit forms, separators in the date's gaps and before the
    last four, and format characters anywhere between."""
    if gaps is None:
        gaps = (4, 6, 8) if len(digits) == 12 else (2, 4, 6)
    parts: list[str] = []
    for index, digit in enumerate(digits):
        if index in gaps:
            parts.append(draw(tail_separator_runs if index == len(digits) - 4 else separator_runs))
        parts.append(draw(digit_form(digit)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(1, len(parts) - 1))
        parts.insert(at, draw(format_characters))
    return "".join(parts)


def published_numbers() -> st.SearchStrategy[str]:
    """Any published test number, 12 or 10 digits."""
    return st.sampled_from(TEST_NUMBERS).flatmap(lambda twelve: st.sampled_from([twelve, twelve[2:]]))


@st.composite
def variants(draw: st.DrawFn) -> str:
    """A test number written in a Unicode variant, possibly inside text."""
    number = draw(written(draw(published_numbers())))
    if draw(st.booleans()):
        before, after = draw(surrounding_text), draw(surrounding_text)
        return f"{before}x {number} x{after}" if draw(st.booleans()) else before + number + after
    return number
