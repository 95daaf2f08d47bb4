"""Pseudonyms at the edge: keyed, deterministic, kind-separated, and unable to spell a personal number."""

from __future__ import annotations

import os
import re
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vardkoll.collector.pseudonyms import KINDS, FirmwareBridgePseudonymiser, Pseudonymiser, SecretFileError, load_or_create_secret, read_secret
from vardkoll.protocol import contains_personal_number
from vardkoll.protocol.events import EVENT_ID_PATTERN, PSEUDONYM_PATTERN

SECRET = bytes(range(32))


def test_same_secret_kind_and_value_give_the_same_pseudonym():
    assert Pseudonymiser(SECRET).pseudonym("call", "TQ-1001") == Pseudonymiser(SECRET).pseudonym("call", "TQ-1001")


def test_a_case_and_a_call_with_the_same_source_id_differ():
    pseudonymiser = Pseudonymiser(SECRET)
    assert len({pseudonymiser.pseudonym(kind, "4711") for kind in KINDS}) == len(KINDS)


def test_another_device_secret_gives_other_pseudonyms():
    assert Pseudonymiser(SECRET).pseudonym("patient", "p1") != Pseudonymiser(bytes(32)).pseudonym("patient", "p1")


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown pseudonym kind"):
        Pseudonymiser(SECRET).pseudonym("phone", "x")


@settings(max_examples=300)
@given(kind=st.sampled_from(KINDS), value=st.text(max_size=40))
def test_pseudonyms_are_letters_only_valid_on_the_wire_and_never_a_personal_number(kind, value):
    pseudonym = Pseudonymiser(SECRET).pseudonym(kind, value)
    assert re.fullmatch(r"[a-z]{22}", pseudonym)
    assert re.search(PSEUDONYM_PATTERN, pseudonym)
    assert not contains_personal_number(pseudonym)


@given(value=st.from_regex(r"(19|20)?[0-9]{6}[-+]?[0-9]{4}", fullmatch=True))
def test_a_personal_number_as_source_id_leaves_no_digit_behind(value):
    assert not any(ch.isdigit() for ch in Pseudonymiser(SECRET).pseudonym("patient", value))


def test_secret_is_created_once_with_mode_0600_and_reused(tmp_path):
    path = tmp_path / "state" / "pseudonym.key"
    old_umask = os.umask(0o000)
    try:
        first = load_or_create_secret(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_or_create_secret(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temporary left behind


def test_a_secret_readable_by_others_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "pseudonym.key"
    load_or_create_secret(path)
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        load_or_create_secret(path)


def test_the_secret_never_shows_in_repr():
    assert SECRET.hex() not in repr(Pseudonymiser(SECRET))


def test_a_secret_file_of_raw_bytes_is_refused_with_a_reason_not_a_traceback(tmp_path):
    path = tmp_path / "pseudonym.key"
    path.write_bytes(bytes(range(0xC0, 0xE0)))  # 32 random-looking bytes instead of hex text
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match="does not hold a hex secret"):
        read_secret(path)


@settings(max_examples=300)
@given(kind=st.sampled_from(FirmwareBridgePseudonymiser.KINDS), value=st.text(max_size=40))
def test_the_bridge_scheme_is_letters_only_valid_on_the_wire_and_never_a_personal_number(kind, value):
    scheme = FirmwareBridgePseudonymiser(SECRET)
    case, event_id = scheme.pseudonym(kind, value), scheme.event_id("firmware_bridge", value, "care.contact")
    assert re.fullmatch(r"k[a-zA-F]{24}", case) and re.search(PSEUDONYM_PATTERN, case)
    assert re.fullmatch(r"fw-[a-zA-F]{24}", event_id) and re.search(EVENT_ID_PATTERN, event_id)
    assert not contains_personal_number(case + event_id)


def test_the_bridge_scheme_separates_its_kinds_and_refuses_others():
    scheme = FirmwareBridgePseudonymiser(SECRET)
    assert len({scheme.pseudonym("case", "a\x1fb"), scheme.pseudonym("case-unlinked", "a\x1fb"), scheme.event_id("x", "a\x1fb", "t")}) == 3
    with pytest.raises(ValueError, match="unknown firmware-bridge pseudonym kind"):
        scheme.pseudonym("patient", "x")
    assert SECRET.hex() not in repr(scheme) and repr(SECRET) not in repr(scheme)


def test_a_bridge_event_id_is_the_press_alone():
    """A press re-sent after its input was mapped to another event type is still the same event."""
    scheme = FirmwareBridgePseudonymiser(SECRET)
    assert scheme.event_id("firmware_bridge", "d1\x1f7\x1f5", "care.contact") == scheme.event_id("other", "d1\x1f7\x1f5", "care.assessed")
    assert scheme.event_id("firmware_bridge", "d1\x1f7\x1f5", "care.contact") != scheme.event_id("firmware_bridge", "d1\x1f7\x1f6", "care.contact")
