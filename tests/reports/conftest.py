from __future__ import annotations

from typing import Iterator

import pytest

from api.api_world import Api, running_api

from .world import UPPSALA, VC01, VC02, month_events


def post_all(api: Api, events: list[dict]) -> None:
    for start in range(0, len(events), 100):
        response = api.post("/api/v1/events", json=events[start : start + 100])
        assert response.status_code == 200, response.text
        assert not response.json().get("rejected"), response.text


@pytest.fixture
def month_api(database_url: str) -> Iterator[Api]:
    """The API on SQLite, then PostgreSQL, with the hand-worked month of world.py stored."""
    with running_api(database_url) as api:
        api.register(VC01, UPPSALA, ownership="offentlig", municipality_code="0380")
        api.register(VC02, UPPSALA, ownership="privat")
        api.register("SE2321000016-GA01", "Region Gävleborg")
        post_all(api, month_events())
        yield api
