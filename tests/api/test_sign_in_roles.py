"""The sign-in roles an admin maps claim values to (issue 16), on PostgreSQL and SQLite: each change is in the
access log once, with what it changed; scopes follow the role; devices cannot be signed in."""

from __future__ import annotations

from .api_world import UPPSALA, VC01

ROLES = "/api/v1/sign-in/roles"


def test_an_admin_maps_a_group_to_a_role_and_removes_it_and_the_access_log_says_what(api):
    made = api.post(ROLES, json={"claim": "groups", "value": "vk-chef-vc01", "role": "clinic_manager", "unit": VC01})
    assert made.status_code == 201, made.text
    assert [(r["claim"], r["value"], r["role"], r["unit"]) for r in api.get(ROLES).json()] == [("groups", "vk-chef-vc01", "clinic_manager", VC01)]
    assert api.delete(f"{ROLES}/{made.json()['id']}").status_code == 204
    assert api.get(ROLES).json() == []
    changes = [(r["action"], r["unit"], r["detail"]) for r in reversed(api.get("/api/v1/access-log", params={"action": "change"}).json())]
    assert changes == [
        ("change:sign_in_role", VC01, f"added groups=vk-chef-vc01 -> clinic_manager unit {VC01}"),
        ("change:sign_in_role", VC01, f"removed groups=vk-chef-vc01 -> clinic_manager unit {VC01}"),
    ]


def test_a_mapping_takes_its_roles_scope_once_and_never_the_device_role(api):
    assert api.post(ROLES, json={"claim": "groups", "value": "g", "role": "clinic_manager"}).status_code == 422  # needs a unit
    assert api.post(ROLES, json={"claim": "groups", "value": "g", "role": "device", "unit": VC01}).status_code == 422
    assert api.post(ROLES, json={"claim": "groups", "value": "g", "role": "region_analyst", "region": UPPSALA}).status_code == 201
    again = api.post(ROLES, json={"claim": "groups", "value": "g", "role": "admin"})
    assert again.status_code == 422 and "mapped already" in again.text
    assert api.delete(f"{ROLES}/999").status_code == 404


def test_only_admins_map_roles(api):
    analyst = api.token("region_analyst", region=UPPSALA)
    assert api.get(ROLES, token=analyst).status_code == 403
    assert api.post(ROLES, token=analyst, json={"claim": "groups", "value": "g", "role": "admin"}).status_code == 403
