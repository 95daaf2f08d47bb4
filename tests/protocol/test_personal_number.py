"""The personal-number guard (SPEC 3.2, domain.md 4.3).

Fixed examples use only Skatteverket's published test numbers 19121212-1212 / 121212-1212 and the
coordination number 19610973-2393 / 610973-2393 (HL7 Sweden). Every other number is built at run
time, by construction: a valid date, a birth number, and a check digit computed by the Luhn helper
below (written from the rule in domain.md 4.3, not imported from the code under test).
"""

from __future__ import annotations

import calendar
import json
import re
import unicodedata
from datetime import date

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vardkoll.protocol.personal_number import (
    contains_personal_number,
    find_personal_number,
    raw_may_contain_personal_number,
)
from vardkoll.protocol.validation import EventRejected, parse_event_line, validate_event

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Skatteverket's test numbers (the only fixed numbers allowed in this file).
TEST_NUMBER_12 = "191212121212"
TEST_NUMBER_10 = "1212121212"
COORDINATION_12 = "196109732393"
COORDINATION_10 = "6109732393"

SEPARATORS = ("", "-", "+", " ")


# --- helpers -------------------------------------------------------------------------------------


def check_digit(nine: str) -> str:
    """Skatteverket's rule: multiply YYMMDDNNN alternately by 2 and 1 (2 first), add the digits of
    the products, subtract the ones digit of the sum from 10; 10 becomes 0."""
    assert len(nine) == 9 and nine.isdigit()
    total = 0
    for index, char in enumerate(nine):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def test_luhn_helper_reproduces_the_worked_examples_of_domain_md():
    assert check_digit("121212121") == "2"  # 121212-1212
    assert check_digit("610973239") == "3"  # 610973-2393 (coordination number)


def build(century: int, yy: int, month: int, day: int, birth: int) -> str:
    """Twelve digits CCYYMMDDNNNC with a correct check digit (the date is not checked here)."""
    nine = f"{yy:02d}{month:02d}{day:02d}{birth:03d}"
    return f"{century:02d}{nine}{check_digit(nine)}"


def written_forms(twelve: str) -> list[str]:
    """Every written form: 10 or 12 digits, with '-', '+', a space or nothing before the last four."""
    forms = []
    for digits in (twelve, twelve[2:]):
        for sep in SEPARATORS:
            forms.append(digits[:-4] + sep + digits[-4:])
    return forms


def twelve_digit_forms(twelve: str) -> list[str]:
    return [twelve[:-4] + sep + twelve[-4:] for sep in SEPARATORS]


def with_check_digit(twelve: str, digit: str) -> str:
    return twelve[:-1] + digit


@st.composite
def valid_numbers(draw, coordination: bool | None = None) -> str:
    """A valid personal identity number (or, with day + 60, coordination number), as 12 digits."""
    born = draw(st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31)))
    if coordination is None:
        coordination = draw(st.booleans())
    day = born.day + (60 if coordination else 0)
    birth = draw(st.integers(min_value=1, max_value=999))
    return build(born.year // 100, born.year % 100, born.month, day, birth)


leap_days = st.sampled_from([y for y in range(1800, 2100) if calendar.isleap(y)]).map(lambda y: date(y, 2, 29))
non_leap_years = st.sampled_from([y for y in range(1800, 2100) if not calendar.isleap(y)])
birth_numbers = st.integers(min_value=1, max_value=999)


def reads_as_no_digit(char: str) -> bool:
    """Neither a digit of any script nor a character whose compatibility form holds one ("¹", "①")."""
    return not any(unicodedata.category(c) == "Nd" for c in unicodedata.normalize("NFKC", char))


# Surrounding text without anything read as a digit, so the number keeps its own digit run.
no_digit_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)).filter(reads_as_no_digit), max_size=20)


# --- fixed examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", written_forms(TEST_NUMBER_12))
def test_skatteverket_test_number_is_caught_in_every_written_form(text):
    assert contains_personal_number(text)


@pytest.mark.parametrize("text", written_forms(COORDINATION_12))
def test_coordination_number_with_day_plus_60_is_refused(text):
    assert contains_personal_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "ring 19121212-1212 idag",
        "ring 121212-1212 idag",
        "patient 610973-2393 väntar",
        "pnr:196109732393.",
        "(121212+1212)",
        "abc1212121212def",
        "rad 1\nnummer 121212 1212\nslut",
        '"19121212-1212"',
    ],
)
def test_number_embedded_in_longer_text_is_caught(text):
    assert contains_personal_number(text)


@pytest.mark.parametrize(
    "text",
    ["19121212-1212 ringde", "121212-1212 ringde", "ringde 19121212-1212", "ringde 121212-1212", "1212121212", "610973-2393"],
)
def test_number_at_start_or_end_of_string_is_caught(text):
    assert contains_personal_number(text)


def test_number_after_a_non_matching_digit_group_is_still_caught():
    assert contains_personal_number("ärende 4711 och 8 st, sedan 121212-1212")
    assert contains_personal_number("999999 121212-1212")
    assert contains_personal_number("12345 19121212-1212 678")


def test_bad_check_digit_121212_1213_does_not_match():
    assert not contains_personal_number("121212-1213")
    assert not contains_personal_number("ref 121212-1213")


@pytest.mark.parametrize("text", written_forms(TEST_NUMBER_12) + written_forms(COORDINATION_12))
def test_fixed_numbers_with_any_other_check_digit_do_not_match(text):
    right = text[-1]
    for digit in "0123456789":
        if digit != right:
            assert not contains_personal_number(text[:-1] + digit), digit


@pytest.mark.parametrize(
    "text",
    [
        "12121212121212",  # 14 digits
        "1212121212121",  # 13 digits
        "12121212121",  # 11 digits
        "91212121212",  # 11 digits
        "121212-12121",  # five digits after the separator
        "9121212-1212",  # seven digits before the separator
    ],
)
def test_digit_run_inside_longer_digit_run_does_not_match(text):
    assert not contains_personal_number(text)


@pytest.mark.parametrize("text", ["", "hej", "2026-03-02T08:00:00+01:00", "SE2321000016-VC01", "k-0003", "c-answer1", "1212", "121212"])
def test_text_without_a_personal_number_does_not_match(text):
    assert not contains_personal_number(text)


# --- dates ---------------------------------------------------------------------------------------


def invalid_date_cases() -> list[tuple[str, str]]:
    """(name, 12 digits with a correct check digit but an impossible date)."""
    return [
        ("month 13", build(19, 12, 13, 12, 121)),
        ("month 0", build(19, 12, 0, 12, 121)),
        ("day 32", build(19, 12, 1, 32, 121)),
        ("day 0", build(19, 12, 12, 0, 121)),
        ("Feb 30", build(19, 12, 2, 30, 121)),
        ("Apr 31", build(19, 12, 4, 31, 121)),
        ("day 60 (coordination day 0)", build(19, 12, 12, 60, 121)),
        ("day 92 (coordination day 32)", build(19, 12, 12, 92, 121)),
        ("Feb 90 (coordination Feb 30)", build(19, 12, 2, 90, 121)),
    ]


@pytest.mark.parametrize(("name", "twelve"), invalid_date_cases(), ids=[c[0] for c in invalid_date_cases()])
def test_invalid_date_with_correct_check_digit_does_not_match(name, twelve):
    for text in written_forms(twelve):
        assert not contains_personal_number(text), text


def test_feb_29_in_a_non_leap_12_digit_year_does_not_match():
    for year in (1900, 2023, 1899):
        twelve = build(year // 100, year % 100, 2, 29, 121)
        for text in twelve_digit_forms(twelve):
            assert not contains_personal_number(text), text


def test_feb_29_in_a_leap_year_matches():
    for year in (2000, 1904, 2024, 1896):
        twelve = build(year // 100, year % 100, 2, 29, 121)
        for text in written_forms(twelve):
            assert contains_personal_number(text), text


def test_coordination_day_91_matches_and_day_61_matches():
    assert contains_personal_number(build(19, 12, 12, 91, 121)[2:])
    assert contains_personal_number(build(19, 12, 12, 61, 121)[2:])


# --- property tests: numbers built by construction -------------------------------------------------


@SETTINGS
@given(valid_numbers())
def test_generated_valid_number_is_caught_in_every_written_form(twelve):
    for text in written_forms(twelve):
        assert contains_personal_number(text), text


@SETTINGS
@given(valid_numbers(coordination=True))
def test_generated_coordination_number_is_caught_in_every_written_form(twelve):
    for text in written_forms(twelve):
        assert contains_personal_number(text), text


@SETTINGS
@given(leap_days, st.booleans(), birth_numbers)
def test_generated_leap_day_number_is_caught_in_every_written_form(born, coordination, birth):
    twelve = build(born.year // 100, born.year % 100, 2, 29 + (60 if coordination else 0), birth)
    for text in written_forms(twelve):
        assert contains_personal_number(text), text


@SETTINGS
@given(valid_numbers(), st.sampled_from(range(8)), no_digit_text, no_digit_text)
def test_generated_number_embedded_in_text_is_caught(twelve, form, before, after):
    text = before + written_forms(twelve)[form] + after
    assert contains_personal_number(text)


@SETTINGS
@given(valid_numbers(), st.integers(min_value=1, max_value=9))
def test_changing_the_check_digit_to_any_other_digit_does_not_match(twelve, shift):
    wrong = str((int(twelve[-1]) + shift) % 10)
    for text in written_forms(with_check_digit(twelve, wrong)):
        assert not contains_personal_number(text), text


@SETTINGS
@given(
    st.integers(1800, 2099),
    st.sampled_from(["month 13", "month 0", "day 32", "day 0", "Feb 30", "day 92", "day 60", "month > 13"]),
    st.booleans(),
    birth_numbers,
    st.data(),
)
def test_generated_invalid_date_does_not_match_even_with_a_correct_check_digit(year, kind, coordination, birth, data):
    plus = 60 if coordination else 0
    month, day = {
        "month 13": (13, 12 + plus),
        "month 0": (0, 12 + plus),
        "day 32": (data.draw(st.integers(1, 12)), 32 + plus),
        "day 0": (data.draw(st.integers(1, 12)), 0),
        "Feb 30": (2, 30 + plus),
        "day 92": (data.draw(st.integers(1, 12)), 92),
        "day 60": (data.draw(st.integers(1, 12)), 60),
        "month > 13": (data.draw(st.integers(13, 99)), 12 + plus),
    }[kind]
    twelve = build(year // 100, year % 100, month, day, birth)
    for text in written_forms(twelve):
        assert not contains_personal_number(text), text


@SETTINGS
@given(non_leap_years, st.booleans(), birth_numbers)
def test_generated_feb_29_in_a_non_leap_12_digit_year_does_not_match(year, coordination, birth):
    twelve = build(year // 100, year % 100, 2, 29 + (60 if coordination else 0), birth)
    for text in twelve_digit_forms(twelve):
        assert not contains_personal_number(text), text


@SETTINGS
@given(
    valid_numbers(),
    st.booleans(),
    st.text(alphabet="0123456789", max_size=4),
    st.text(alphabet="0123456789", max_size=4),
)
def test_generated_number_inside_a_longer_digit_run_does_not_match(twelve, long_form, before, after):
    digits = twelve if long_form else twelve[2:]
    assume(len(before) + len(after) + len(digits) >= 13)
    assert not contains_personal_number("x" + before + digits + after + "x")


@SETTINGS
@given(valid_numbers(), st.sampled_from(["-", "+", " "]), st.text(alphabet="0123456789", min_size=1, max_size=4))
def test_generated_number_with_a_longer_last_group_does_not_match(twelve, sep, after):
    for digits in (twelve, twelve[2:]):
        assert not contains_personal_number(digits[:-4] + sep + digits[-4:] + after)


# --- find_personal_number: where, never what -----------------------------------------------------


def clean_event() -> dict:
    return {
        "v": 1,
        "id": "ev-0001",
        "type": "listing.snapshot",
        "unit": "SE2321000016-VC01",
        "at": "2026-03-02T08:00:00+01:00",
        "device": "collector-1",
        "listed": 8100,
        "named_doctor": 4860,
        "doctors": [{"doctor": "doc-anna", "listed": 1500}, {"doctor": "doc-bert", "listed": 1200, "active": False}],
    }


def test_find_returns_none_for_a_clean_event():
    assert find_personal_number(clean_event()) is None
    assert find_personal_number({}) is None
    assert find_personal_number([]) is None
    assert find_personal_number(None) is None
    assert find_personal_number(True) is None


def test_find_returns_the_known_field_that_holds_the_number():
    event = clean_event() | {"type": "call.offered", "call": "c-000001", "queue": "patient 19121212-1212"}
    assert find_personal_number(event) == "queue"


def test_find_returns_the_unknown_field_that_holds_the_number():
    assert find_personal_number(clean_event() | {"note": "610973-2393"}) == "note"


def test_find_returns_the_path_into_a_list_of_objects():
    event = clean_event()
    event["doctors"][1]["doctor"] = "121212-1212"
    assert find_personal_number(event) == "doctors[1].doctor"


def test_find_returns_the_path_into_nested_lists_and_objects():
    event = clean_event() | {"extra": {"rows": [["ok", "fine"], ["ok", {"who": "ring 121212 1212"}]]}}
    assert find_personal_number(event) == "extra.rows[1][1].who"


def test_find_returns_the_first_hit_in_document_order():
    event = clean_event() | {"a": "121212-1212", "b": ["610973-2393"]}
    assert find_personal_number(event) == "a"
    assert find_personal_number({"a": ["ok", {"b": "121212-1212"}], "c": "610973-2393"}) == "a[1].b"


def test_find_reports_a_dict_key_that_holds_the_number_without_echoing_it():
    assert find_personal_number({"121212-1212": "x"}) == "(a field name)"
    assert find_personal_number({"outer": {"pnr 19121212-1212": 1}}) == "outer.(a field name)"


def test_find_hides_field_names_that_do_not_look_like_names():
    assert find_personal_number({"två ord": "121212-1212"}) == "(a field)"
    assert find_personal_number({"x12121212120": "121212-1212"}) == "(a field)"
    assert find_personal_number({"line2": "121212-1212"}) == "line2"


@pytest.mark.parametrize("number", [1212121212, 191212121212, 6109732393, 196109732393, 1212121212.0, -1212121212])
def test_find_catches_a_number_written_without_quotes(number):
    assert find_personal_number(clean_event() | {"note": number}) == "note"
    assert find_personal_number(number) == "(value)"


def test_find_ignores_ordinary_numbers_and_booleans():
    assert find_personal_number({"a": 0, "b": 8100, "c": 1.5, "d": True, "e": None, "f": 1212121213}) is None


def test_find_on_a_bare_string_reports_value():
    assert find_personal_number("121212-1212") == "(value)"


def test_find_survives_deep_nesting():
    deep: object = "121212-1212"
    for _ in range(5000):
        deep = [deep]
    assert find_personal_number({"deep": deep}) == "deep" + "[0]" * 5000


# --- raw pre-check and the full path -------------------------------------------------------------

PN_REASON = "contains a personal identity number"


def base_event() -> dict:
    return {
        "v": 1,
        "id": "ev-0001",
        "type": "call.offered",
        "unit": "SE2321000016-VC01",
        "at": "2026-03-02T08:00:00+01:00",
        "call": "c-000001",
    }


def assert_reason_hides(reason: str, twelve: str) -> None:
    """The reason names no form of the number: not the 10 significant digits, not the 12, not any
    separated written form, not the digits with separators removed."""
    assert "\n" not in reason and "Traceback" not in reason
    compact = re.sub(r"[-+ ]", "", reason)
    for form in written_forms(twelve):
        assert form not in reason
    assert twelve[2:] not in compact
    assert twelve[2:] not in re.sub(r"[^0-9]", "", reason)


def refuse(raw: bytes) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_event_line(raw)
    return caught.value.reason


def test_raw_precheck_is_false_for_a_clean_event():
    raw = json.dumps(base_event()).encode()
    assert raw_may_contain_personal_number(raw) is False


def test_raw_precheck_is_true_for_a_visible_number():
    assert raw_may_contain_personal_number(json.dumps(base_event() | {"q": "121212-1212"}).encode())


def test_raw_precheck_is_true_whenever_a_unicode_escape_could_hide_a_number():
    assert raw_may_contain_personal_number(b'{"q": "\\u0041"}')


def escape_some_digits(literal: str, mask: list[bool]) -> str:
    """Rewrite digits of a JSON string literal as \\u00XX escapes where the mask says so (existing
    escapes such as \\u00e5 are copied untouched)."""
    out = []
    digits_seen = 0
    index = 0
    while index < len(literal):
        char = literal[index]
        if char == "\\":
            width = 6 if literal[index + 1] == "u" else 2
            out.append(literal[index : index + width])
            index += width
            continue
        if char in "0123456789":
            out.append("\\u%04x" % ord(char) if mask[digits_seen % len(mask)] else char)
            digits_seen += 1
        else:
            out.append(char)
        index += 1
    return "".join(out)


FIELD_NAMES = st.one_of(
    st.sampled_from(["queue", "call", "id", "unit", "device", "at", "note", "slot", "reason", "doctors"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="0123456789"), min_size=1, max_size=8),
)


@SETTINGS
@given(
    twelve=valid_numbers(),
    form=st.sampled_from(range(8)),
    before=no_digit_text,
    after=no_digit_text,
    field=FIELD_NAMES,
    nesting=st.sampled_from(["top", "list", "object"]),
    ensure_ascii=st.booleans(),
    mask=st.lists(st.booleans(), min_size=1, max_size=12),
)
def test_raw_precheck_never_says_clean_when_the_decoded_event_holds_a_number(twelve, form, before, after, field, nesting, ensure_ascii, mask):
    text = before + written_forms(twelve)[form] + after
    placeholder = "@@PLACEHOLDER@@"
    holder: object = {"top": placeholder, "list": ["ok", placeholder], "object": {"inner": placeholder}}[nesting]
    event = base_event()
    event[field] = holder
    raw_text = json.dumps(event, ensure_ascii=ensure_ascii)
    literal = escape_some_digits(json.dumps(text, ensure_ascii=ensure_ascii), mask)
    raw = raw_text.replace(json.dumps(placeholder), literal).encode()
    assert json.loads(raw)[field] == {"top": text, "list": ["ok", text], "object": {"inner": text}}[nesting]

    assert raw_may_contain_personal_number(raw) is True
    reason = refuse(raw)
    assert reason.startswith(PN_REASON)
    assert_reason_hides(reason, twelve)


@SETTINGS
@given(twelve=valid_numbers(), long_form=st.booleans(), field=FIELD_NAMES)
def test_number_written_as_a_json_integer_is_refused(twelve, long_form, field):
    digits = twelve if long_form else twelve[2:]
    assume(not digits.startswith("0"))  # JSON has no leading zeros
    raw = json.dumps(base_event() | {field: int(digits)}).encode()
    assert raw_may_contain_personal_number(raw) is True
    reason = refuse(raw)
    assert reason.startswith(PN_REASON)
    assert_reason_hides(reason, twelve)


@pytest.mark.parametrize(
    "number",
    [
        "1.212121212e9",  # decodes to 1212121212.0
        "121212121.2E1",
        "12121212120e-1",
        "1212121211.99999999999",  # rounds to 1212121212.0
        "11212121212000000000000",  # too big for 64 bits: a float printed as 1.1212121212e+22
    ],
)
def test_number_hidden_in_a_json_float_is_refused_on_the_full_path(number):
    raw = json.dumps(base_event())[:-1].encode() + b', "note": ' + number.encode() + b"}"
    assert find_personal_number(orjson.loads(raw)) == "note"  # what the slow walk sees...
    assert raw_may_contain_personal_number(raw) is True  # ...the fast pre-check must not wave through
    reason = refuse(raw)
    assert reason.startswith(PN_REASON)
    assert_reason_hides(reason, TEST_NUMBER_12)


@SETTINGS
@given(twelve=valid_numbers(), form=st.sampled_from(range(8)), ensure_ascii=st.booleans())
def test_full_path_and_dict_path_agree_on_refusal(twelve, form, ensure_ascii):
    event = base_event() | {"queue": "ring " + written_forms(twelve)[form]}
    raw = json.dumps(event, ensure_ascii=ensure_ascii).encode()
    with pytest.raises(EventRejected) as from_dict:
        validate_event(json.loads(raw))
    assert refuse(raw) == from_dict.value.reason == "contains a personal identity number (field 'queue'); the event was refused"


def test_reason_does_not_echo_a_field_name_that_carries_the_digits():
    raw = json.dumps(base_event() | {"x12121212120": "121212-1212"}).encode()
    reason = refuse(raw)
    assert reason.startswith(PN_REASON)
    assert_reason_hides(reason, TEST_NUMBER_12)


def test_number_in_a_field_name_is_refused_without_echoing_it():
    reason = refuse(json.dumps(base_event() | {"19121212-1212": "x"}).encode())
    assert reason == "contains a personal identity number (field '(a field name)'); the event was refused"


def test_deeply_nested_event_is_judged_not_crashed():
    depth = 1000  # orjson accepts up to 1024 levels; deeper than Python's default recursion limit
    prefix = json.dumps(base_event())[:-1]
    hidden = (prefix + ', "n": ' + "[" * depth + '"\\u0031212121212"' + "]" * depth + "}").encode()
    reason = refuse(hidden)
    assert reason.startswith(PN_REASON)
    assert_reason_hides(reason, TEST_NUMBER_12)
    for nesting in (100, 1000, 1100, 5000):
        for leaf in ('"\\u0041"', '"x"', "1"):
            clean = (prefix + ', "n": ' + "[" * nesting + leaf + "]" * nesting + "}").encode()
            assert_judged(lambda: parse_event_line(clean))
        nested: object = "x"
        for _ in range(nesting):
            nested = [nested]
        assert_judged(lambda: validate_event(base_event() | {"n": nested}))


def assert_judged(attempt) -> None:
    """An event comes back, or a one-line refusal; refusing absurd nesting is fine, crashing is not."""
    try:
        assert attempt().type == "call.offered"
    except EventRejected as exc:
        assert "\n" not in exc.reason and "Traceback" not in exc.reason


def test_invalid_json_holding_a_number_does_not_echo_it():
    for raw in (b'{"q": "121212-1212', b'{"q": "121212-1212" x}', b"121212-1212", b'{"q": 19121212-1212}'):
        reason = refuse(raw)
        assert reason.startswith("not valid JSON")
        assert_reason_hides(reason, TEST_NUMBER_12)


def test_bad_check_digit_passes_the_full_path():
    event = parse_event_line(json.dumps(base_event() | {"queue": "ref 121212-1213"}).encode())
    assert event.queue == "ref 121212-1213"


def number_tokens(digits: str) -> list[str]:
    """JSON number texts that decode to a value whose str() may show `digits` though the text need not."""
    value = int(digits)
    return [
        digits,
        digits + ".0",
        f"{value / 10**3!r}e3",
        f"{value / 10**9!r}E+9",
        digits + "0e-1",
        str(value - 1) + ".99999999999999",
        "1" + digits + "0" * 12,  # more than 64 bits: orjson reads a float, printed 1.<digits>e+NN
        "-" + digits,
    ]


@SETTINGS
@given(
    twelve=valid_numbers(),
    long_form=st.booleans(),
    pick=st.integers(0, 7),
    layout=st.sampled_from([{}, {"separators": (",", ":")}, {"indent": 2}, {"indent": "\t"}]),
    in_list=st.booleans(),
)
def test_raw_precheck_is_never_clean_when_the_walk_would_find_a_number(twelve, long_form, pick, layout, in_list):
    digits = twelve if long_form else twelve[2:]
    assume(not digits.startswith("0"))
    token = number_tokens(digits)[pick]
    placeholder = 987654321
    event = base_event() | {"note": [1, placeholder] if in_list else placeholder}
    raw = json.dumps(event, **layout).replace(str(placeholder), token).encode()
    decoded = orjson.loads(raw)
    if find_personal_number(decoded) is not None:
        assert raw_may_contain_personal_number(raw) is True
        assert refuse(raw).startswith(PN_REASON)
    else:
        assert parse_event_line(raw).type == "call.offered"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"at": "2026-03-02T08:00:00.123+01:00", "call": "c-3e5a9f"}',
        b'{"id": "ev.1", "q": "version 1.5 of 2.0e3"}',
    ],
)
def test_raw_precheck_stays_fast_for_fractional_seconds_and_hex_pseudonyms(raw):
    assert raw_may_contain_personal_number(raw) is False
