from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from .bundles import build_bundle, stage, unpack


@pytest.fixture(scope="session")
def host_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline bundle of this tree for this machine (built once per session, about 15 s)."""
    return build_bundle(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def unpacked_bundle(host_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(host_bundle, tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def installed(unpacked_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bundle installed offline into PREFIX/versions/VERSION (about 10 s)."""
    yield stage(unpacked_bundle, tmp_path_factory.mktemp("opt") / "vardkoll-collector")
