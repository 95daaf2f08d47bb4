from __future__ import annotations

from typing import Iterator

import pytest

from api.api_world import Api, running_api

from .world import REGION, VN01, VN01_NAME, VN02, VN02_NAME, year_events


@pytest.fixture
def year_api(database_url: str) -> Iterator[Api]:
    """The API on SQLite, then PostgreSQL, with the hand-worked year of world.py stored."""
    with running_api(database_url) as api:
        for unit, name in ((VN01, VN01_NAME), (VN02, VN02_NAME)):
            response = api.post("/api/v1/units", json={"unit": unit, "name": name, "region": REGION})
            assert response.status_code == 201, response.text
        api.register("SE2321000016-GA01", "Region Gävleborg")
        response = api.post(f"/api/v1/units/{VN01}/targets", json={"metric": "telephone", "target": 0.85, "valid_from": "2026-01-01"})
        assert response.status_code == 201, response.text
        events = year_events()
        for start in range(0, len(events), 100):
            response = api.post("/api/v1/events", json=events[start : start + 100])
            assert response.status_code == 200, response.text
            assert not response.json().get("rejected"), response.text
        yield api
