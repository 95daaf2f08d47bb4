"""From the ID token's claims to a role and a name (server/sign_in/): pure rules, no provider needed."""

from __future__ import annotations

import pytest

from vardkoll.server.auth import Role
from vardkoll.server.sign_in import Grant, NoRole, grant_for, who_signed_in
from vardkoll.server.storage.sign_in_tables import SignInRole

VC01 = "SE2321000016-VC01"


def mapping(id_: int, claim: str, value: str, role: Role, unit: str | None = None, region: str | None = None) -> SignInRole:
    return SignInRole(id=id_, claim=claim, value=value, role=role.value, unit=unit, region=region, created_by="test")


def test_a_list_claim_holding_the_value_or_a_string_claim_equal_to_it_gives_the_role():
    mappings = [mapping(1, "groups", "vk-chef-vc01", Role.clinic_manager, unit=VC01), mapping(2, "role", "analytiker", Role.region_analyst, region="R")]
    assert grant_for({"groups": ["andra", "vk-chef-vc01"]}, mappings) == Grant(Role.clinic_manager, None, VC01)
    assert grant_for({"role": "analytiker"}, mappings) == Grant(Role.region_analyst, "R", None)
    with pytest.raises(NoRole, match="no sign-in role matches"):
        grant_for({"groups": "vk-chef-vc01-x", "role": ["x"]}, mappings)


def test_mappings_that_disagree_refuse_the_sign_in():
    mappings = [mapping(1, "groups", "a", Role.clinic_manager, unit=VC01), mapping(2, "groups", "b", Role.admin)]
    with pytest.raises(NoRole, match="1, 2 all match and disagree"):
        grant_for({"groups": ["a", "b"]}, mappings)


def test_a_person_is_never_named_by_a_personal_number():
    assert who_signed_in({"sub": "abc", "preferred_username": "anna.a", "name": "Anna"}) == "anna.a"
    assert who_signed_in({"sub": "abc", "preferred_username": "19121212-1212", "name": "Anna"}) == "Anna"
    named = who_signed_in({"sub": "191212121212"})
    assert named.startswith("sub:") and "191212121212" not in named and len(named) == 20
