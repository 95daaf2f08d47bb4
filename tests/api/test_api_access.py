"""Each role sees what it should and nothing more: 401 without a valid token, 403 outside one's scope."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import select

from vardkoll.server.alerts.store import AlertRaised, raise_alerts
from vardkoll.server.monitoring import version
from vardkoll.server.storage.job_tables import Alert

from .api_world import ADMIN_TOKEN, GAVLEBORG, UPPSALA, VC01, VC02, VC10, Api, event, running_api

PERIOD = "metric=telephone&from=2026-03-01&to=2026-03-31"
PERIOD_ONLY = "from=2026-03-01&to=2026-03-31"
SCRATCH = "Region Scratch"  # where the table's own registrations go, away from the units under test
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[Api]:
    """Three registered units in two regions, one token per role and scope."""
    with running_api(f"sqlite:///{tmp_path_factory.mktemp('access')}/t.db") as api:
        for unit, region in ((VC01, UPPSALA), (VC02, UPPSALA), (VC10, GAVLEBORG)):
            api.register(unit, region)
        api.tokens = {
            "admin_env": ADMIN_TOKEN,
            "admin": api.token("admin"),
            "analyst_uppsala": api.token("region_analyst", region=UPPSALA),
            "analyst_gavleborg": api.token("region_analyst", region=GAVLEBORG),
            "manager_vc01": api.token("clinic_manager", unit=VC01),
            "manager_vc10": api.token("clinic_manager", unit=VC10),
            "installer_uppsala": api.token("installer", region=UPPSALA),
            "installer_anywhere": api.token("installer"),
            "device_vc01": api.token("device", unit=VC01, device="pi-1"),
        }
        api.services.config_publisher = lambda unit, device, version, sections: f"vardkoll/v1/{unit}/{device}/config"  # no broker here
        response = api.post(
            "/api/v1/events", json=[event("seen-1", VC01), event("seen-2", VC10), event("bad-vc01", VC01, call="x")], token=api.tokens["device_vc01"]
        )
        assert response.status_code == 200
        yield api


ROLES = ["admin_env", "admin", "analyst_uppsala", "analyst_gavleborg", "manager_vc01", "manager_vc10", "installer_uppsala", "installer_anywhere", "device_vc01"]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # as the OpenAPI document names it
    path: Callable[[Api], str]  # built per request: some routes need a fresh thing to act on
    body: Callable[[], Any] | None = None


def _temporary_unit(api: Api) -> str:
    unit = f"SE2321000016-TMP{next(_serial)}"
    api.register(unit, SCRATCH)
    return f"/api/v1/units/{unit}"


def _temporary_device(api: Api) -> str:
    path = f"/api/v1/units/{VC01}/devices/pi-tmp-{next(_serial)}"
    assert api.put(path).status_code == 200
    return path


def _temporary_target(api: Api) -> str:
    created = api.post(f"/api/v1/units/{VC01}/targets", json={"metric": "assessment", "target": 0.8, "valid_from": f"{2100 + next(_serial)}-01-01"})
    return f"/api/v1/units/{VC01}/targets/{created.json()['id']}"


def _temporary_token(api: Api) -> str:
    return f"/api/v1/tokens/{api.post('/api/v1/tokens', json={'name': 'to revoke', 'role': 'admin'}).json()['id']}"


def _temporary_sign_in_role(api: Api) -> str:
    made = api.post("/api/v1/sign-in/roles", json={"claim": "groups", "value": f"tmp-{next(_serial)}", "role": "admin"})
    return f"/api/v1/sign-in/roles/{made.json()['id']}"


def _temporary_benchmark(api: Api) -> str:
    created = api.post(
        f"/api/v1/regions/{SCRATCH}/benchmarks",
        json={"metric": "assessment", "kind": "target", "label": "mål", "value": 0.9, "valid_from": f"{2100 + next(_serial)}-01-01"},
    )
    return f"/api/v1/regions/{SCRATCH}/benchmarks/{created.json()['id']}"


def _temporary_alert(api: Api) -> str:
    subject = f"case-{next(_serial)}"
    with api.services.sessions() as session:
        raise_alerts(session, [AlertRaised(VC01, "assessment_overdue", subject, {})], datetime.now(timezone.utc))
        session.commit()
        alert_id = session.scalars(select(Alert.id).where(Alert.unit == VC01, Alert.subject == subject)).one()
    return f"/api/v1/alerts/{alert_id}/acknowledge"


def _managers_subscription(api: Api) -> str:
    """Made with manager_vc01's token: that token and admins may delete it; to anyone else it does not exist."""
    made = api.post(
        "/api/v1/alert-subscriptions",
        json={"name": "VC01", "scope": "unit", "unit": VC01, "channel": "email", "address": "larm@example.invalid"},
        token=api.tokens["manager_vc01"],
    )
    return f"/api/v1/alert-subscriptions/{made.json()['id']}"


def _report_month(suffix: str) -> Callable[[Api], str]:
    """A path under the ended month's report, after the report has been made (version 1)."""

    def path(api: Api) -> str:
        assert api.get(f"/api/v1/reports/monthly/{UPPSALA}/2026-03").status_code == 200
        return f"/api/v1/reports/monthly/{UPPSALA}/2026-03{suffix}"

    return path


def _fixed(path: str) -> Callable[[Api], str]:
    return lambda api: path


UNIT = "/api/v1/units/{unit}"
ROUTES = {
    "unit figure": Route("GET", UNIT + "/compliance", _fixed(f"/api/v1/units/{VC01}/compliance?{PERIOD}")),
    "unit figure csv": Route("GET", UNIT + "/compliance", _fixed(f"/api/v1/units/{VC01}/compliance?{PERIOD}&format=csv")),
    "figure list": Route("GET", "/api/v1/compliance", _fixed(f"/api/v1/compliance?{PERIOD}")),
    "figure list of region": Route("GET", "/api/v1/compliance", _fixed(f"/api/v1/compliance?{PERIOD}&region={UPPSALA}")),
    "units": Route("GET", "/api/v1/units", _fixed("/api/v1/units")),
    "units of region": Route("GET", "/api/v1/units", _fixed(f"/api/v1/units?region={UPPSALA}")),
    "register unit": Route(
        "POST", "/api/v1/units", _fixed("/api/v1/units"), lambda: {"unit": f"SE2321000016-NEW{next(_serial)}", "name": "Ny", "region": SCRATCH}
    ),
    "unit": Route("GET", UNIT, _fixed(f"/api/v1/units/{VC01}")),
    "change unit": Route("PUT", UNIT, _fixed(f"/api/v1/units/{VC01}"), lambda: {"name": "Vårdcentral VC01"}),
    "unregister unit": Route("DELETE", UNIT, _temporary_unit),
    "targets": Route("GET", UNIT + "/targets", _fixed(f"/api/v1/units/{VC01}/targets")),
    "set target": Route(
        "POST",
        UNIT + "/targets",
        _fixed(f"/api/v1/units/{VC01}/targets"),
        lambda: {"metric": "telephone", "target": 0.85, "valid_from": f"{2100 + next(_serial)}-01-01"},
    ),
    "delete target": Route("DELETE", UNIT + "/targets/{target_id}", _temporary_target),
    "post events": Route("POST", "/api/v1/events", _fixed("/api/v1/events"), lambda: [event(f"access-{next(_serial)}", VC01)]),
    "dead letters": Route("GET", "/api/v1/dead-letters", _fixed("/api/v1/dead-letters")),
    "dead letters of unit": Route("GET", "/api/v1/dead-letters", _fixed(f"/api/v1/dead-letters?unit={VC01}")),
    "create token": Route("POST", "/api/v1/tokens", _fixed("/api/v1/tokens"), lambda: {"name": "new", "role": "region_analyst", "region": UPPSALA}),
    "rotate token": Route("POST", "/api/v1/tokens/{token_id}/rotate", lambda api: _temporary_token(api) + "/rotate", lambda: {}),
    "unit series": Route("GET", "/api/v1/series", _fixed(f"/api/v1/series?metric=telephone&grain=day&{PERIOD_ONLY}&unit={VC01}")),
    "series of region": Route("GET", "/api/v1/series", _fixed(f"/api/v1/series?metric=telephone&grain=day&{PERIOD_ONLY}&region={UPPSALA}")),
    "unit events": Route("GET", UNIT + "/events", _fixed(f"/api/v1/units/{VC01}/events?{PERIOD_ONLY}")),
    "unit audits": Route("GET", UNIT + "/audits", _fixed(f"/api/v1/units/{VC01}/audits?{PERIOD_ONLY}")),
    "unit profile": Route("GET", UNIT + "/profile.pdf", _fixed(f"/api/v1/units/{VC01}/profile.pdf?month=2026-03")),
    "access log": Route("GET", "/api/v1/access-log", _fixed("/api/v1/access-log")),
    "sign-in roles": Route("GET", "/api/v1/sign-in/roles", _fixed("/api/v1/sign-in/roles")),
    "map sign-in role": Route(
        "POST", "/api/v1/sign-in/roles", _fixed("/api/v1/sign-in/roles"), lambda: {"claim": "groups", "value": f"g-{next(_serial)}", "role": "admin"}
    ),
    "unmap sign-in role": Route("DELETE", "/api/v1/sign-in/roles/{mapping_id}", _temporary_sign_in_role),
    "region figure": Route("GET", "/api/v1/regions/{region}/compliance", _fixed(f"/api/v1/regions/{UPPSALA}/compliance?{PERIOD}")),
    "region benchmarks": Route("GET", "/api/v1/regions/{region}/benchmarks", _fixed(f"/api/v1/regions/{UPPSALA}/benchmarks")),
    "set region benchmark": Route(
        "POST",
        "/api/v1/regions/{region}/benchmarks",
        _fixed(f"/api/v1/regions/{SCRATCH}/benchmarks"),
        lambda: {"metric": "telephone", "kind": "comparison", "label": "Riket", "value": 0.89, "valid_from": f"{2100 + next(_serial)}-01-01"},
    ),
    "delete region benchmark": Route("DELETE", "/api/v1/regions/{region}/benchmarks/{benchmark_id}", _temporary_benchmark),
    "tokens": Route("GET", "/api/v1/tokens", _fixed("/api/v1/tokens")),
    "revoke token": Route("DELETE", "/api/v1/tokens/{token_id}", _temporary_token),
    "devices": Route("GET", UNIT + "/devices", _fixed(f"/api/v1/units/{VC01}/devices")),
    "register device": Route("PUT", UNIT + "/devices/{device}", lambda api: f"/api/v1/units/{VC01}/devices/pi-{next(_serial)}"),
    "retire device": Route("DELETE", UNIT + "/devices/{device}", _temporary_device),
    "create enrollment code": Route("POST", UNIT + "/enrollment-codes", _fixed(f"/api/v1/units/{VC01}/enrollment-codes")),
    "replace device": Route("POST", UNIT + "/devices/{device}/replacement", lambda api: _temporary_device(api) + "/replacement"),
    "device config": Route("GET", UNIT + "/devices/{device}/config", lambda api: _temporary_device(api) + "/config"),
    "alerts of unit": Route("GET", "/api/v1/alerts", _fixed(f"/api/v1/alerts?unit={VC01}")),
    "acknowledge alert": Route("POST", "/api/v1/alerts/{alert_id}/acknowledge", _temporary_alert),
    "alert rules of unit": Route("GET", "/api/v1/alert-rules/units/{unit}", _fixed(f"/api/v1/alert-rules/units/{VC01}")),
    "set alert rules of unit": Route("PUT", "/api/v1/alert-rules/units/{unit}", _fixed(f"/api/v1/alert-rules/units/{VC01}"), lambda: {"at_risk_hours": 24}),
    "set alert rules of region": Route(
        "PUT", "/api/v1/alert-rules/regions/{region}", _fixed(f"/api/v1/alert-rules/regions/{SCRATCH}"), lambda: {"at_risk_hours": 24}
    ),
    "subscribe own unit": Route(
        "POST",
        "/api/v1/alert-subscriptions",
        _fixed("/api/v1/alert-subscriptions"),
        lambda: {"name": "VC01", "scope": "unit", "unit": VC01, "channel": "email", "address": "larm@example.invalid"},
    ),
    "subscriptions": Route("GET", "/api/v1/alert-subscriptions", _fixed("/api/v1/alert-subscriptions")),
    "unsubscribe": Route("DELETE", "/api/v1/alert-subscriptions/{subscription_id}", _managers_subscription),
    "alert deliveries": Route("GET", "/api/v1/alert-deliveries", _fixed("/api/v1/alert-deliveries")),
    "report months": Route("GET", "/api/v1/reports/monthly/{region}", _fixed(f"/api/v1/reports/monthly/{UPPSALA}")),
    "monthly report": Route("GET", "/api/v1/reports/monthly/{region}/{month}", _fixed(f"/api/v1/reports/monthly/{UPPSALA}/2026-03")),
    "internal monthly report": Route("GET", "/api/v1/reports/monthly/{region}/{month}", _fixed(f"/api/v1/reports/monthly/{UPPSALA}/2026-03?variant=internal")),
    "report versions": Route("GET", "/api/v1/reports/monthly/{region}/{month}/versions", _report_month("/versions")),
    "report diff": Route("GET", "/api/v1/reports/monthly/{region}/{month}/diff", _report_month("/diff?from=1&to=1")),
    "push device config": Route(
        "PUT", UNIT + "/devices/{device}/config", lambda api: _temporary_device(api) + "/config", lambda: {"version": "1", "sections": {"poll_interval_s": 5}}
    ),
}

# Expected status per route, in the order of ROLES:
#        admin_env admin analyst_U analyst_G manager01 manager10 inst_U inst_all device01
ACCESS = {
    "unit figure": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "unit figure csv": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "figure list": (200, 200, 200, 200, 200, 200, 403, 403, 403),
    "figure list of region": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "units": (200, 200, 200, 200, 200, 200, 200, 200, 403),
    "units of region": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "register unit": (201, 201, 403, 403, 403, 403, 403, 403, 403),
    "unit": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "change unit": (200, 200, 403, 403, 403, 403, 403, 403, 403),
    "unregister unit": (204, 204, 403, 403, 403, 403, 403, 403, 403),
    "targets": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "set target": (201, 201, 403, 403, 403, 403, 403, 403, 403),
    "delete target": (204, 204, 403, 403, 403, 403, 403, 403, 403),
    "post events": (200, 200, 403, 403, 403, 403, 403, 403, 200),
    "dead letters": (200, 200, 200, 200, 200, 200, 200, 200, 403),
    "dead letters of unit": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "create token": (201, 201, 403, 403, 403, 403, 403, 403, 403),
    "tokens": (200, 200, 403, 403, 403, 403, 403, 403, 403),
    "sign-in roles": (200, 200, 403, 403, 403, 403, 403, 403, 403),
    "map sign-in role": (201, 201, 403, 403, 403, 403, 403, 403, 403),
    "unmap sign-in role": (204, 204, 403, 403, 403, 403, 403, 403, 403),
    "revoke token": (204, 204, 403, 403, 403, 403, 403, 403, 403),
    "devices": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "register device": (200, 200, 403, 403, 403, 403, 200, 200, 403),
    "retire device": (200, 200, 403, 403, 403, 403, 200, 200, 403),
    "create enrollment code": (201, 201, 403, 403, 403, 403, 201, 201, 403),
    "replace device": (201, 201, 403, 403, 403, 403, 201, 201, 403),
    "device config": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "push device config": (200, 200, 403, 403, 403, 403, 200, 200, 403),
    "rotate token": (201, 201, 403, 403, 403, 403, 403, 403, 403),
    "unit series": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "series of region": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "unit events": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "unit audits": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "unit profile": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "access log": (200, 200, 403, 403, 403, 403, 403, 403, 403),
    "region figure": (200, 200, 200, 403, 403, 403, 403, 403, 403),
    "region benchmarks": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "set region benchmark": (201, 201, 403, 403, 403, 403, 403, 403, 403),
    "delete region benchmark": (204, 204, 403, 403, 403, 403, 403, 403, 403),
    "alerts of unit": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "acknowledge alert": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "alert rules of unit": (200, 200, 200, 403, 200, 403, 200, 200, 403),
    "set alert rules of unit": (200, 200, 403, 403, 403, 403, 403, 403, 403),
    "set alert rules of region": (200, 200, 403, 403, 403, 403, 403, 403, 403),
    "subscribe own unit": (201, 201, 403, 403, 201, 403, 403, 403, 403),  # others only their own token's scope
    "subscriptions": (200, 200, 200, 200, 200, 200, 200, 200, 403),
    "unsubscribe": (204, 204, 404, 404, 204, 404, 404, 404, 403),  # another token's subscription is not shown to exist
    "alert deliveries": (200, 200, 403, 403, 403, 403, 403, 403, 403),
    "report months": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "monthly report": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "internal monthly report": (200, 200, 200, 403, 403, 403, 403, 403, 403),  # a clinic manager gets the public variant only
    "report versions": (200, 200, 200, 403, 200, 403, 403, 403, 403),
    "report diff": (200, 200, 200, 403, 200, 403, 403, 403, 403),
}


def _send(api: Api, route: Route, token: str | None, headers: dict[str, str] | None = None):
    request_headers = headers if headers is not None else api.headers(token)
    body = route.body() if route.body else None
    return api.client.request(route.method, route.path(api), headers=request_headers, json=body)


def test_the_table_covers_every_route(world):
    documented = {(method.upper(), path) for path, ops in world.client.get("/openapi.json").json()["paths"].items() for method in ops}
    # Health (and the probes) need no token; the live stream never ends, so its access is tested in tests/integration/test_live.py;
    # enrolling takes a one-time code instead of a token (tests/api/test_enrollment.py).
    unlisted = {("GET", "/api/v1/health"), ("GET", "/api/v1/health/live"), ("GET", "/api/v1/health/ready"), ("GET", "/api/v1/live"), ("POST", "/api/v1/enroll")}
    assert documented - unlisted == {(route.method, route.template) for route in ROUTES.values()}
    assert set(ACCESS) == set(ROUTES)


@pytest.mark.parametrize(("route", "role", "expected"), [(name, role, status) for name, row in ACCESS.items() for role, status in zip(ROLES, row)])
def test_role_gets_expected_status(world, route, role, expected):
    response = _send(world, ROUTES[route], world.tokens[role])
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["detail"]  # says what the token is limited to


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("credentials", [None, "Bearer not-a-token", "Bearer ", "Basic eDp4", f"Bearer {ADMIN_TOKEN}x"])
def test_without_a_valid_token_every_route_is_401(world, route, credentials):
    response = _send(world, ROUTES[route], None, {} if credentials is None else {"Authorization": credentials})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token" in response.json()["detail"]


def test_a_revoked_token_is_401_at_once(world):
    secret = world.token("region_analyst", region=UPPSALA)
    assert world.get("/api/v1/units", token=secret).status_code == 200
    assert world.delete(f"/api/v1/tokens/{world.token_ids[secret]}").status_code == 204
    rejected = world.get("/api/v1/units", token=secret)
    assert rejected.status_code == 401 and 'error="invalid_token"' in rejected.headers["www-authenticate"]


def test_health_needs_no_token(world):
    response = world.client.get("/api/v1/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok", "version": version()}
    assert world.client.get("/api/v1/health/live").status_code == 200
    assert world.client.get("/api/v1/health/ready").json()["database"] == "ok"


def test_region_analyst_lists_only_their_regions_units_and_figures(world):
    token = world.tokens["analyst_gavleborg"]
    assert [u["unit"] for u in world.get("/api/v1/units", token=token).json()] == [VC10]
    assert [f["unit"] for f in world.get(f"/api/v1/compliance?{PERIOD}", token=token).json()] == [VC10]
    uppsala = world.get(f"/api/v1/compliance?{PERIOD}", token=world.tokens["analyst_uppsala"]).json()
    assert [f["unit"] for f in uppsala] == [VC01, VC02]


def test_clinic_manager_sees_only_their_unit(world):
    token = world.tokens["manager_vc01"]
    assert [u["unit"] for u in world.get("/api/v1/units", token=token).json()] == [VC01]
    assert [f["unit"] for f in world.get(f"/api/v1/compliance?{PERIOD}", token=token).json()] == [VC01]
    assert [f["unit"] for f in world.get(f"/api/v1/compliance?{PERIOD}&region={UPPSALA}", token=token).json()] == [VC01]
    assert world.get(f"/api/v1/units/{VC02}/compliance?{PERIOD}", token=token).status_code == 403


def test_admin_without_region_gets_every_registered_unit(world):
    units = [f["unit"] for f in world.get(f"/api/v1/compliance?{PERIOD}").json()]
    assert {VC01, VC02, VC10} <= set(units) and units == sorted(units)


def test_dead_letters_are_confined_to_scope(world):
    assert {d["unit"] for d in world.get("/api/v1/dead-letters").json()} >= {VC01}
    assert world.get("/api/v1/dead-letters", token=world.tokens["manager_vc10"]).json() == []
    assert world.get("/api/v1/dead-letters", token=world.tokens["analyst_gavleborg"]).json() == []
    mine = world.get("/api/v1/dead-letters", token=world.tokens["manager_vc01"]).json()
    assert mine and {d["unit"] for d in mine} == {VC01}


def test_installer_does_not_read_figures_but_sees_their_regions_units(world):
    token = world.tokens["installer_uppsala"]
    assert [u["unit"] for u in world.get("/api/v1/units", token=token).json()] == sorted(u["unit"] for u in world.get(f"/api/v1/units?region={UPPSALA}").json())
    assert world.get(f"/api/v1/units/{VC10}", token=token).status_code == 403


def test_a_device_token_is_refused_everywhere_but_posting_events(world):
    token = world.tokens["device_vc01"]
    for path in ("/api/v1/units", f"/api/v1/units/{VC01}", f"/api/v1/units/{VC01}/compliance?{PERIOD}", "/api/v1/dead-letters"):
        assert world.get(path, token=token).status_code == 403
