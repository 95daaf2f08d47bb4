"""A real server app on a SQLite file, driven through FastAPI's TestClient, and what tests send it."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from fastapi.testclient import TestClient

from vardkoll.server.app import create_app
from vardkoll.server.auth import Role, issue_token
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings

ADMIN_TOKEN = "api-test-Admin-token-0123456789"  # strong enough for the server's check
VC01, VC02, VC10 = "SE2321000016-VC01", "SE2321000016-VC02", "SE2321000016-VC10"
UPPSALA, GAVLEBORG = "Region Uppsala", "Region Gävleborg"


@dataclass
class Api:
    client: TestClient
    services: Services
    tokens: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, int] = field(default_factory=dict)  # secret → id

    def token(self, role: Role | str, region: str | None = None, unit: str | None = None, device: str | None = None) -> str:
        with self.services.sessions.begin() as session:
            row, secret = issue_token(session, f"test {role} {region or unit or ''}".strip(), Role(role), region, unit, device)
            self.token_ids[secret] = row.id
        return secret

    def headers(self, token: str | None = ADMIN_TOKEN) -> dict[str, str]:
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def get(self, path: str, token: str | None = ADMIN_TOKEN, **kwargs):
        return self.client.get(path, headers={**self.headers(token), **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, token: str | None = ADMIN_TOKEN, **kwargs):
        return self.client.post(path, headers={**self.headers(token), **kwargs.pop("headers", {})}, **kwargs)

    def put(self, path: str, token: str | None = ADMIN_TOKEN, **kwargs):
        return self.client.put(path, headers=self.headers(token), **kwargs)

    def delete(self, path: str, token: str | None = ADMIN_TOKEN, **kwargs):
        return self.client.delete(path, headers=self.headers(token), **kwargs)

    def register(self, unit: str, region: str, **fields) -> None:
        response = self.post("/api/v1/units", json={"unit": unit, "name": f"Vårdcentral {unit[-4:]}", "region": region, **fields})
        assert response.status_code == 201, response.text


@contextmanager
def running_api(database_url: str, **settings) -> Iterator[Api]:
    """The app serving the API only (no MQTT consumer), on `database_url` (migrated first)."""
    config = ServerSettings(database_url=database_url, admin_token=ADMIN_TOKEN, dev=False, **settings)
    services = build_services(config, apply_migrations=True)
    try:
        with TestClient(create_app(config, services, background=False)) as client:
            yield Api(client, services)
    finally:
        services.engine.dispose()


def event(event_id: str, unit: str = VC01, **fields) -> dict:
    """A valid call.offered event unless `fields` say otherwise."""
    return {"v": 1, "id": event_id, "type": "call.offered", "unit": unit, "at": "2026-03-02T08:00:00+01:00", "call": f"call-{event_id}", **fields}
