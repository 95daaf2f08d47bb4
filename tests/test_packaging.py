"""Every package folder is listed in pyproject.toml, or a wheel (unlike the editable install) would miss it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for name, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    assert found == listed


def test_the_collector_needs_no_server_dependencies():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(config["dependencies"] + config["optional-dependencies"]["collector"]).lower()
    assert "fastapi" not in core and "sqlmodel" not in core and "sqlalchemy" not in core
