"""The architecture's arrows: no import circles anywhere in vardkoll, and each folder imports only from the
folders below it (protocol/ <- collector/ <- firmware_bridge/; protocol/ <- server/; vardkoll/ on top).

The graph is read from the source with `ast` (nothing is imported), counting every import, also those
inside functions: an import put off into a function still makes a circle, it only hides it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each top-level folder may import from (besides itself); `vardkoll` (the CLI, demo) may import anything.
MAY_IMPORT = {
    "protocol": set(),
    "collector": {"protocol"},
    "firmware_bridge": {"protocol", "collector"},
    "server": {"protocol"},
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every package folder pyproject.toml maps into `vardkoll`."""
    package_dir = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found: dict[str, Path] = {}
    for package, folder in package_dir.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if all(part.isidentifier() for part in parts):  # not migration scripts such as 0001_initial.py
                found.setdefault(".".join((package, *parts)), path)
    return found


def _known(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of vardkoll that `name` imports anywhere in its file (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            candidates = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for candidate in candidates:
            target = _known(candidate, known)
            if target is not None and target != name:
                targets.add(target)
    return targets


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def folder(module: str) -> str:
    """The top-level folder of a module (`vardkoll.collector.clock` -> `collector`; the CLI's -> `vardkoll`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else "vardkoll"


def layer_breaches(edges: dict[str, set[str]]) -> list[str]:
    # The root package itself (`vardkoll/__init__.py`: the version, nothing imported) is every module's parent.
    return sorted(
        f"{a} -> {b}"
        for a, targets in edges.items()
        for b in targets
        if b != "vardkoll" and folder(a) != folder(b) and folder(a) in MAY_IMPORT and folder(b) not in MAY_IMPORT[folder(a)]
    )


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    found = graph()
    assert {"vardkoll.collector.clock", "vardkoll.firmware_bridge.service", "vardkoll.server.app", "vardkoll.cli"} <= set(found)
    return found


def test_no_import_circles(edges):
    assert circles(edges) == []


def test_each_folder_imports_only_from_the_folders_below_it(edges):
    assert layer_breaches(edges) == []


def test_the_check_sees_a_circle_through_an_import_inside_a_function(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools]\npackage-dir = { "pkg" = "src" }\n')
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "clock.py").write_text("def later():\n    from .sub.publisher import sync\n")
    (tmp_path / "src" / "sub" / "__init__.py").write_text("")
    (tmp_path / "src" / "sub" / "publisher.py").write_text("from ..config import X\nimport json\n")
    (tmp_path / "src" / "config.py").write_text("from pkg import clock\n")
    assert circles(graph(tmp_path)) == [["pkg.clock", "pkg.config", "pkg.sub.publisher"]]
