from __future__ import annotations

from typing import Iterator

import pytest

from .api_world import Api, running_api


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """The API on an empty database: a SQLite file, then PostgreSQL (tests/support/plugin.py)."""
    with running_api(database_url) as running:
        yield running
