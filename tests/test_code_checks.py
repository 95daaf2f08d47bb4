"""The code checks CI runs with the tests: ruff's lint and format check, and mypy (strict for the wire contract and the
metric rules), and no `type: ignore` without its error code and a reason on the same line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("protocol", "server", "collector", "firmware_bridge")  # installed as vardkoll.<name>
STRICT = ("vardkoll.protocol", "vardkoll.server.metrics")
IGNORE_COMMENT = re.compile(r"[#]\s*type:\s*ignore")  # [#]: so that these two lines are not findings themselves
IGNORE_WITH_REASON = re.compile(r"[#] type: ignore\[[\w, -]+\]\s+[#]\s*\S")


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.fail(f"{name} is not installed in this environment: it is in the dev extra (pip install -e '.[dev]')")
    return str(path)


def test_ruff_finds_nothing():
    result = subprocess.run([_tool("ruff"), "check", "--quiet", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_would_change_nothing():
    result = subprocess.run([_tool("ruff"), "format", "--check", "--quiet", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, "run `ruff format .`:\n" + result.stdout + result.stderr


def test_mypy_strict_on_the_wire_contract_and_the_metric_rules(tmp_path):
    # mypy reads the tree as it is installed (protocol/ is vardkoll.protocol, ...): lay that out with links.
    tree = tmp_path / "vardkoll"
    tree.mkdir()
    for entry in (ROOT / "vardkoll").iterdir():
        (tree / entry.name).symlink_to(entry)
    for package in PACKAGES:
        (tree / package).symlink_to(ROOT / package)
    command = [_tool("mypy"), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache")]
    for package in STRICT:
        command += ["-p", package]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_type_ignore_says_which_error_and_why():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bare = []
    for name in tracked:
        for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
            if IGNORE_COMMENT.search(line) and not IGNORE_WITH_REASON.search(line):
                bare.append(f"{name}:{number}: {line.strip()}")
    assert not bare, "a type: ignore needs [its-code] and '# why' on the same line:\n" + "\n".join(bare)
