"""The installer's side of a software update: `vardkoll collector install-update`, as root.

Started by `vardkoll-collector-update.path` when the collector has staged a bundle (offer.py). It trusts
nothing the collector wrote: it checks the signature with the keys root installed, the version against
the one installed, and the bundle's SHA-256, then installs the bundle offline with its own `install.sh
--stage-only` into `PREFIX/versions/VERSION`, records a trial, switches `PREFIX/current` to the new version
and restarts the collector. The new agent writes `confirmed` once it is connected to the broker; without
that within `confirm_timeout_s` (it crashed, or cannot reach the broker), `current` goes back to the
previous version and the collector is restarted on it. A trial cut short (power cut, a killed installer)
counts as failed when the installer next runs, as a remote config trial does. The outcome goes to
`result.json`, which the collector reports in its heartbeat.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .manifest import UpdateManifest, UpdateRefused, file_sha256, is_newer, load_public_keys, verify
from .offer import UpdatePaths, read_json, write_json

log = logging.getLogger("vardkoll.collector.update")

CONFIRM_TIMEOUT_S = 120.0
UNITS = ("vardkoll-collector.service", "vardkoll-bridge.service")


def systemctl_restart() -> None:
    """Restart whichever of the collector's units is running (`try-restart` leaves a stopped one stopped)."""
    subprocess.run(["systemctl", "try-restart", *UNITS], check=False, timeout=120)


@dataclass(frozen=True)
class InstallResult:
    version: str
    state: str  # installed | rolled_back | refused
    reason: str | None = None
    previous: str | None = None


def current_version(prefix: Path) -> str | None:
    try:
        return os.readlink(prefix / "current").rstrip("/").rsplit("/", 1)[-1]
    except OSError:
        return None


def switch_current(prefix: Path, version: str) -> None:
    """`PREFIX/current` -> versions/VERSION, atomically (a new symlink renamed over the old)."""
    temporary = prefix / "current.new"
    temporary.unlink(missing_ok=True)
    os.symlink(f"versions/{version}", temporary)
    os.replace(temporary, prefix / "current")


class Installer:
    def __init__(
        self,
        state_dir: Path,
        prefix: Path,
        trusted_keys: Path,
        *,
        restart: Callable[[], None] = systemctl_restart,
        python: str = "python3",
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.paths = UpdatePaths(state_dir / "update")
        self.prefix = prefix
        self.trusted_keys = trusted_keys
        self.restart = restart
        self.python = python
        self.confirm_timeout_s = confirm_timeout_s
        self._clock, self._sleep = clock, sleep

    def run(self) -> InstallResult | None:
        """Handle the staged request (None when there is none); always removes the request at the end."""
        try:
            trial = read_json(self.paths.trial)
            if trial is not None:
                return self._finish_interrupted(trial)
            if not self.paths.request.exists():
                return None
            return self._install()
        finally:
            self.paths.request.unlink(missing_ok=True)

    # -- steps ----------------------------------------------------------------------------------------

    def _install(self) -> InstallResult:
        label = (read_json(self.paths.state) or {}).get("offered", "unknown")
        try:
            manifest = self._checked_offer()
        except UpdateRefused as exc:
            return self._record(InstallResult(str(label), "refused", str(exc), current_version(self.prefix)))
        previous = current_version(self.prefix)
        try:
            self._stage_version(manifest)
        except UpdateRefused as exc:
            return self._record(InstallResult(manifest.version, "refused", str(exc), previous))
        finally:
            self._drop_staged(manifest)
        if previous is None:
            switch_current(self.prefix, manifest.version)
            return self._record(InstallResult(manifest.version, "installed", None, None))
        write_json(self.paths.trial, {"version": manifest.version, "previous": previous})
        self.paths.confirmed.unlink(missing_ok=True)
        switch_current(self.prefix, manifest.version)
        log.info(
            "switched to %s (was %s); restarting the collector and waiting %.0f s for it to reach the broker",
            manifest.version,
            previous,
            self.confirm_timeout_s,
        )
        self.restart()
        if self._wait_confirmed(manifest.version):
            return self._keep(manifest.version, previous)
        return self._roll_back(
            manifest.version, previous, f"version {manifest.version} did not reach the broker within {self.confirm_timeout_s:.0f} s; rolled back to {previous}"
        )

    def _checked_offer(self) -> UpdateManifest:
        document = read_json(self.paths.offer)
        if document is None:
            raise UpdateRefused("no staged offer to install")
        manifest = verify(document, load_public_keys(self.trusted_keys))
        installed = current_version(self.prefix)
        if installed is not None and not is_newer(manifest.version, installed):
            raise UpdateRefused(f"version {manifest.version} is not newer than the installed {installed}")
        bundle = self.paths.bundle(manifest)
        if not bundle.is_file() or bundle.stat().st_size != manifest.size or file_sha256(bundle) != manifest.sha256:
            raise UpdateRefused(f"version {manifest.version}: the staged bundle does not match the signed SHA-256 and size")
        return manifest

    def _stage_version(self, manifest: UpdateManifest) -> None:
        """The bundle's own install.sh puts the version's venv in PREFIX/versions/VERSION (offline)."""
        with tempfile.TemporaryDirectory(prefix="vardkoll-update-") as scratch:
            with tarfile.open(self.paths.bundle(manifest)) as tar:
                tar.extractall(scratch, filter="data")
            top = Path(scratch) / manifest.bundle.removesuffix(".tar.gz")
            bundle_info = read_json(top / "BUNDLE.json") or {}
            if bundle_info.get("version") != manifest.version:
                raise UpdateRefused(f"version {manifest.version}: the bundle inside says version {bundle_info.get('version')}")
            done = subprocess.run(
                ["sh", str(top / "install.sh"), "--stage-only", "--prefix", str(self.prefix), "--python", self.python],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if done.returncode != 0:
                last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
                raise UpdateRefused(f"version {manifest.version} did not install: {last[0][:200]}")

    def _wait_confirmed(self, version: str) -> bool:
        deadline = self._clock() + self.confirm_timeout_s
        while self._clock() < deadline:
            if self._confirmed(version):
                return True
            self._sleep(0.5)
        return self._confirmed(version)

    def _confirmed(self, version: str) -> bool:
        try:
            return self.paths.confirmed.read_text().strip() == version
        except OSError:
            return False

    def _finish_interrupted(self, trial: dict[str, str]) -> InstallResult:
        version, previous = str(trial.get("version")), str(trial.get("previous"))
        if self._confirmed(version):
            return self._keep(version, previous)
        return self._roll_back(version, previous, f"the device stopped while trying version {version}; rolled back to {previous}")

    def _keep(self, version: str, previous: str) -> InstallResult:
        self.paths.trial.unlink(missing_ok=True)
        self._prune(keep={version, previous})
        log.info("software update %s installed (previous %s kept for a manual rollback)", version, previous)
        return self._record(InstallResult(version, "installed", None, previous))

    def _roll_back(self, version: str, previous: str, reason: str) -> InstallResult:
        switch_current(self.prefix, previous)
        self.paths.trial.unlink(missing_ok=True)
        self.restart()
        shutil.rmtree(self.prefix / "versions" / version, ignore_errors=True)
        log.error("software update %s", reason)
        return self._record(InstallResult(version, "rolled_back", reason, previous))

    def _prune(self, keep: set[str]) -> None:
        """Only the running version and the one before it stay (an SD card is small)."""
        for folder in (self.prefix / "versions").iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    def _drop_staged(self, manifest: UpdateManifest) -> None:
        self.paths.bundle(manifest).unlink(missing_ok=True)
        self.paths.offer.unlink(missing_ok=True)

    def _record(self, result: InstallResult) -> InstallResult:
        write_json(self.paths.result, {"version": result.version, "state": result.state, "reason": result.reason, "previous": result.previous})
        owner = self.paths.folder.stat()
        for path in (self.paths.result, self.paths.confirmed):
            if path.exists() and os.geteuid() == 0:
                os.chown(path, owner.st_uid, owner.st_gid)  # the collector's folder: it may read and remove them
        return result
