"""The collector's side of a software update: take a signed offer from remote config, stage it, report.

An offer arrives as the `update` section of a remote config version (collector/remote_config.py):

    "update": {"manifest": "…", "signature": "…", "key": "…", "url": "https://…/vardkoll-collector-0.2.0-aarch64.tar.gz"}

The collector checks the signature against its trusted keys (`[software_update] trusted_keys`), that the
version is newer than the one running and built for this machine, downloads the bundle, checks its size
and SHA-256 against the signed manifest, and stages it in `{state}/update/` with a `request` file. The
collector cannot install (its unit makes /opt read-only): `vardkoll-collector-update.path` sees the
request and starts the installer as root (collector/updates/install.py), which checks everything again,
installs, restarts the collector and waits for the new version to reach the broker: the new agent says
so by writing `confirmed` once it is connected. Every refusal has a reason, in the log and in the
heartbeat's `update` object. An offer is handled once per version, as config versions are.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from .manifest import UpdateManifest, UpdateRefused, file_sha256, is_newer, load_public_keys, verify

log = logging.getLogger("vardkoll.collector.update")

DOWNLOAD_TIMEOUT_S = 60.0


def this_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Atomically, mode 0600 unless the folder's owner reads it as another user (the installer chowns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, ensure_ascii=False))
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


@dataclass(frozen=True)
class UpdatePaths:
    """The files of one update in `{state}/update/`, shared by the collector and the installer."""

    folder: Path

    @property
    def state(self) -> Path:  # the collector's last offer and what it did with it
        return self.folder / "state.json"

    @property
    def offer(self) -> Path:  # the signed document of the staged bundle
        return self.folder / "offer.json"

    @property
    def request(self) -> Path:  # its presence starts the installer (vardkoll-collector-update.path)
        return self.folder / "request"

    @property
    def trial(self) -> Path:  # the installer: the version being tried and the one before it
        return self.folder / "trial.json"

    @property
    def confirmed(self) -> Path:  # the new version, once it has reached the broker
        return self.folder / "confirmed"

    @property
    def result(self) -> Path:  # the installer's last outcome
        return self.folder / "result.json"

    def bundle(self, manifest: UpdateManifest) -> Path:
        return self.folder / manifest.bundle


def download(url: str, target: Path, limit_bytes: int, ping: Callable[[], None]) -> None:
    """`url` (https, http, file:// or an absolute path: a USB stick) to `target`, at most `limit_bytes`."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        source = Path(parts.path)
        if not source.is_absolute():
            raise UpdateRefused("the update's url must be https://, http://, file:// or an absolute path")
        try:
            if source.stat().st_size > limit_bytes:
                raise UpdateRefused("the bundle is larger than its signed manifest says")
            shutil.copyfile(source, target)
        except OSError as exc:
            raise UpdateRefused(f"the bundle could not be read from {source} ({exc.strerror})") from None
        return
    if parts.scheme not in ("https", "http"):
        raise UpdateRefused("the update's url must be https://, http://, file:// or an absolute path")
    import httpx

    received = 0
    try:
        with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True) as response, open(target, "wb") as out:
            if response.status_code != 200:
                raise UpdateRefused(f"the bundle could not be downloaded (HTTP {response.status_code} from {parts.hostname})")
            for chunk in response.iter_bytes(1 << 16):
                received += len(chunk)
                if received > limit_bytes:
                    raise UpdateRefused("the bundle is larger than its signed manifest says")
                out.write(chunk)
                ping()  # a slow download is not a hung agent
    except httpx.HTTPError as exc:
        raise UpdateRefused(f"the bundle could not be downloaded from {parts.hostname} ({type(exc).__name__})") from None


class Updater:
    def __init__(
        self,
        state_dir: Path,
        trusted_keys: Path,
        running: str,
        *,
        enabled: bool = True,
        ping: Callable[[], None] = lambda: None,
        machine: str | None = None,
        python: str | None = None,
    ) -> None:
        self.paths = UpdatePaths(state_dir / "update")
        self.trusted_keys = trusted_keys
        self.running = running
        self.enabled = enabled
        self._ping = ping
        self._machine = machine or platform.machine()
        self._python = python or this_python()
        self._confirm_checked = False

    # -- an offer -------------------------------------------------------------------------------------

    def consider(self, document: Any) -> str:
        """`staged`, `unchanged` (this version was handled before) or `refused` (the reason is in the state)."""
        label = _unverified_version(document)
        try:
            if not self.enabled:
                raise UpdateRefused("software updates are turned off on this device ([software_update] enabled = false)")
            manifest = verify(document, load_public_keys(self.trusted_keys))
        except UpdateRefused as exc:
            return self._refuse(label, str(exc))
        last = read_json(self.paths.state) or {}
        if last.get("offered") == manifest.version and last.get("state") == "staged":
            return "unchanged"  # staged, installed or rolled back: a refused one may be offered again
        try:
            self._check_fits(manifest)
            self._stage(document, manifest)
        except UpdateRefused as exc:
            return self._refuse(manifest.version, str(exc))
        write_json(self.paths.state, {"offered": manifest.version, "state": "staged"})
        self.paths.request.write_text(manifest.version + "\n")
        log.info("software update %s downloaded and verified; the installer takes it from here", manifest.version)
        return "staged"

    def _check_fits(self, manifest: UpdateManifest) -> None:
        if manifest.arch != self._machine or manifest.python != self._python:
            raise UpdateRefused(
                f"version {manifest.version} is built for {manifest.arch} / Python {manifest.python}, this device is {self._machine} / Python {self._python}"
            )
        if not is_newer(manifest.version, self.running):
            raise UpdateRefused(f"version {manifest.version} is not newer than the running {self.running}")

    def _stage(self, document: dict[str, Any], manifest: UpdateManifest) -> None:
        url = document.get("url")
        if not isinstance(url, str) or not url:
            raise UpdateRefused(f"version {manifest.version}: the update has no url to fetch the bundle from")
        self.paths.folder.mkdir(parents=True, exist_ok=True)
        partial = self.paths.folder / (manifest.bundle + ".part")
        try:
            download(url, partial, manifest.size, self._ping)
            if partial.stat().st_size != manifest.size or file_sha256(partial) != manifest.sha256:
                raise UpdateRefused(f"version {manifest.version}: the downloaded bundle does not match the signed SHA-256 and size")
            write_json(self.paths.offer, {key: document[key] for key in ("manifest", "signature", "key") if key in document})
            os.replace(partial, self.paths.bundle(manifest))
        finally:
            partial.unlink(missing_ok=True)

    def _refuse(self, version: str, reason: str) -> str:
        log.error("software update %s refused: %s", version, reason)
        write_json(self.paths.state, {"offered": version, "state": "refused", "reason": reason})
        return "refused"

    # -- after an install -----------------------------------------------------------------------------

    def confirm_trial(self) -> bool:
        """Called once connected: if the installer is trying this very version, say it reached the broker."""
        if self._confirm_checked:
            return False
        self._confirm_checked = True
        trial = read_json(self.paths.trial)
        if trial is None or trial.get("version") != self.running:
            return False
        self.paths.confirmed.write_text(self.running + "\n")
        log.info("software update %s reached the broker; confirmed to the installer", self.running)
        return True

    def _confirmed_here(self) -> bool:
        try:
            return self.paths.confirmed.read_text().strip() == self.running
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        """The heartbeat's `update` object: the running version and what became of the last offer."""
        status: dict[str, Any] = {"running": self.running, "state": "current"}
        last = read_json(self.paths.state)
        if last is None:
            return status
        offered = str(last.get("offered"))[:64]
        state, reason = last.get("state"), last.get("reason")
        result = read_json(self.paths.result)
        if result is not None and result.get("version") == offered:
            state, reason = result.get("state"), result.get("reason")
        elif offered == self.running and self._confirmed_here():
            state = "installed"  # this version has reached the broker; the installer records it in a moment
        if state == "installed" and offered == self.running:
            status["state"] = "installed"
        elif state in ("refused", "rolled_back"):
            status["state"] = state
            status["rejected"] = {"version": offered, "reason": str(reason)[:300]}
        elif state == "staged":
            status["state"] = "staged"
            status["offered"] = offered
        return status


def _unverified_version(document: Any) -> str:
    """Only to name a refused offer in the report: the version its manifest claims, or `unknown`."""
    import base64

    try:
        claimed = json.loads(base64.b64decode(document["manifest"]))["version"]
        return str(claimed)[:64] if isinstance(claimed, str) else "unknown"
    except Exception:  # noqa: BLE001 - anything unreadable is just unnamed
        return "unknown"
