"""Build the project's wheel and the collector's offline bundle: `./dev package [--arch aarch64|host]`.

The bundle (`dist/vardkoll-collector-<version>-<arch>.tar.gz`) holds everything a clinic's device needs to
install with no network: the vardkoll wheel, every dependency of the `collector` and `bridge` extras as
wheels for the target (Raspberry Pi OS bookworm: CPython 3.11, glibc 2.36, `aarch64`), pip itself (Debian's
`python3` has no ensurepip), a `requirements.txt` pinning each wheel by version and SHA-256, `install.sh`,
the systemd units, the journald drop-in, the udev example and the example configs.

Dependency wheels come from the package index (`pip download --only-binary=:all:`), so the build needs
the index; the device never does. `--arch host` builds the same bundle for this machine (CI installs it
into a temporary venv with `--no-index` to prove the offline install works).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"  # Raspberry Pi OS bookworm's python3
EXTRAS = "collector,bridge"
# Bookworm has glibc 2.36: every manylinux tag up to it runs there.
GLIBC_MAX_MINOR = 36


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def target_arch(arch: str) -> str:
    return platform.machine() if arch == "host" else arch


def platform_args(arch: str) -> list[str]:
    """pip's --platform list for `arch` (pip does not widen one manylinux tag to the older ones)."""
    if arch == "host":
        return []
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(17, GLIBC_MAX_MINOR + 1)] + [f"manylinux2014_{arch}", f"linux_{arch}"]
    args = [arg for tag in tags for arg in ("--platform", tag)]
    return args + ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp" + PYTHON_VERSION.replace(".", "")]


def run(command: list[str], **kwargs: Any) -> None:
    print("+", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True, **kwargs)


_NOT_COPIED = shutil.ignore_patterns(".venv", ".git", "dist", "build", "*.egg-info", "__pycache__", "node_modules")


def _not_copied(directory: str, names: list[str]) -> set[str]:
    """What a scratch copy of the tree leaves out: environments, builds, caches, and the benchmarks'
    generated databases (`bench/data/`, gigabytes on a machine that ran them; none of it is packaged)."""
    left_out = set(_NOT_COPIED(directory, names))
    if Path(directory) == ROOT / "bench":
        left_out.add("data")
    return left_out


def build_wheel(out: Path, version: str | None = None, edit: Callable[[Path], None] | None = None) -> Path:
    """The project's wheel (pure Python) into `out`; `version` builds a copy of the tree with another version,
    `edit` changes that copy first (tests make update bundles of versions that were never released)."""
    out.mkdir(parents=True, exist_ok=True)
    source = ROOT
    with tempfile.TemporaryDirectory(prefix="vardkoll-build-") as scratch:
        if version is not None or edit is not None:
            version = version or project_version()
            source = Path(scratch) / "src"
            shutil.copytree(ROOT, source, ignore=_not_copied)
            pyproject = source / "pyproject.toml"
            pyproject.write_text(re.sub(r'(?m)^version = "[^"]+"', f'version = "{version}"', pyproject.read_text(), count=1))
            if edit is not None:
                edit(source)
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)], cwd=scratch)
    wanted = version or project_version()
    wheel = out / f"vardkoll-{wanted}-py3-none-any.whl"
    if not wheel.exists():
        raise SystemExit(f"build.py: pip wheel did not make {wheel.name}")
    return wheel


def download_dependencies(wheel: Path, wheels: Path, arch: str) -> None:
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), "--only-binary=:all:", *platform_args(arch)]
    run([*base, f"{wheel}[{EXTRAS}]"])
    run([*base, "--no-deps", "pip"])  # runs from its own wheel to install the rest (see install.sh)


def _name_version(wheel_name: str) -> tuple[str, str]:
    name, version = wheel_name.split("-")[:2]
    return re.sub(r"[-_.]+", "-", name).lower(), version


def write_requirements(wheels: Path, version: str) -> str:
    lines = []
    for wheel in sorted(wheels.glob("*.whl")):
        name, wheel_version = _name_version(wheel.name)
        if name == "pip":
            continue
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        requirement = f"vardkoll[{EXTRAS}]" if name == "vardkoll" else name
        lines.append(f"{requirement}=={wheel_version} --hash=sha256:{digest}")
    if not any(line.startswith(f"vardkoll[{EXTRAS}]=={version} ") for line in lines):
        raise SystemExit(f"build.py: the bundle has no vardkoll {version} wheel")
    return "\n".join(lines) + "\n"


# (source in the repository, place in the bundle)
BUNDLE_FILES = [
    ("packaging/install.sh", "install.sh"),
    ("deploy/collector/vardkoll-collector.service", "units/vardkoll-collector.service"),
    ("deploy/collector/vardkoll-bridge.service", "units/vardkoll-bridge.service"),
    ("deploy/collector/vardkoll-collector-update.service", "units/vardkoll-collector-update.service"),
    ("deploy/collector/vardkoll-collector-update.path", "units/vardkoll-collector-update.path"),
    ("deploy/collector/journald-vardkoll.conf", "journald/vardkoll.conf"),
    ("deploy/collector/99-vardkoll-serial.rules", "udev/99-vardkoll-serial.rules"),
    ("deploy/collector/collector.example.toml", "examples/collector.example.toml"),
    ("firmware_bridge/example-bridge.toml", "examples/bridge.example.toml"),
    ("docs/collector.md", "doc/collector.md"),
    ("docs/firmware-protocol.md", "doc/firmware-protocol.md"),
]


def build_bundle(arch: str, out: Path, version: str | None = None, edit: Callable[[Path], None] | None = None) -> Path:
    version = version or project_version()
    arch = target_arch(arch) if arch == "host" else arch
    name = f"vardkoll-collector-{version}-{arch}"
    with tempfile.TemporaryDirectory(prefix="vardkoll-bundle-") as scratch:
        top = Path(scratch) / name
        wheels = top / "wheels"
        wheel = build_wheel(wheels, version if version != project_version() else None, edit)
        download_dependencies(wheel, wheels, "host" if arch == platform.machine() else arch)
        (top / "requirements.txt").write_text(write_requirements(wheels, version))
        for source, target in BUNDLE_FILES:
            path = ROOT / source
            if path.exists():
                (top / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, top / target)
        (top / "install.sh").chmod(0o755)
        (top / "BUNDLE.json").write_text(
            json.dumps(
                {
                    "product": "vardkoll-collector",
                    "version": version,
                    "arch": arch,
                    "python": PYTHON_VERSION if arch != platform.machine() else f"{sys.version_info[0]}.{sys.version_info[1]}",
                    "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
                indent=2,
            )
            + "\n"
        )
        out.mkdir(parents=True, exist_ok=True)
        bundle = out / f"{name}.tar.gz"
        with tarfile.open(bundle, "w:gz") as tar:
            tar.add(top, arcname=name, filter=_owned_by_root)
    return bundle


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev package", description="Build the wheel and the collector's offline bundle.")
    parser.add_argument("--arch", default="aarch64", help="aarch64 (Raspberry Pi OS, the default), host (this machine), or another manylinux arch")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the wheel and the bundle go (default dist/)")
    parser.add_argument("--version", default=None, help="build as this version (default: pyproject.toml's)")
    parser.add_argument("--wheel-only", action="store_true", help="only the project's wheel")
    args = parser.parse_args(argv)
    if args.wheel_only:
        print(build_wheel(args.out, args.version))
        return 0
    bundle = build_bundle(args.arch, args.out, args.version)
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    print(f"{bundle}\nsha256 {digest}  size {bundle.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
