from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["support.plugin", "support.browser"]

FIXTURES = Path(__file__).parent / "fixtures"


def scenario_files() -> list[Path]:
    """Every hand-worked scenario: the shared examples and our own cases."""
    return sorted(FIXTURES.glob("*/*.expected.json"))


@pytest.fixture
def load_scenario():
    def load(expected_path: Path) -> tuple[Path, dict]:
        return expected_path.with_name(expected_path.name.replace(".expected.json", ".jsonl")), json.loads(expected_path.read_text())

    return load
