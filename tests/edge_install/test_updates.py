"""Signed software updates end to end, with real installs: bundles built from this tree as versions
BASE.1 and BASE.2 (the second unable to reach the broker; BASE is pyproject's version), signed with `packaging/sign.py`, offered
through the retained remote config topic of a real Mosquitto, staged by a running collector, installed
by the installer (`collector/updates/install.py`, what `vardkoll-collector-update.service` runs as root)
and reported in the heartbeat."""

from __future__ import annotations

import base64
import json
import os
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.collector_agent.collector_process import EXAMPLE_DEVICE, EXAMPLE_UNIT, write_config
from tests.integration.mqtt_helpers import wait_until
from vardkoll.collector.updates.install import Installer

from .bundles import DeviceCollector, TopicWatcher, base_python, load_build_module, make_update_keys, sign_bundle

TOPIC = f"vardkoll/v1/{EXAMPLE_UNIT}/{EXAMPLE_DEVICE}"
BASE = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["version"]  # 0.1.0 as written
GOOD, BAD = f"{BASE}.1", f"{BASE}.2"  # 0.1.0.1 and 0.1.0.2: newer, whatever the release


def _cannot_reach_the_broker(tree: Path) -> None:
    """A release whose publisher dials the wrong port: it starts, and never connects."""
    publisher = tree / "collector" / "publisher.py"
    text = publisher.read_text()
    assert "connect_async(self._mqtt.host, self._mqtt.port," in text
    publisher.write_text(text.replace("connect_async(self._mqtt.host, self._mqtt.port,", "connect_async(self._mqtt.host, self._mqtt.port + 1,"))


@pytest.fixture(scope="module")
def update_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    build = load_build_module()
    out = tmp_path_factory.mktemp("updates")
    # Side by side: each build is pip in subprocesses, in a scratch copy of the tree of its own.
    with ThreadPoolExecutor(max_workers=2) as builds:
        good = builds.submit(build.build_bundle, "host", out, GOOD)
        bad = builds.submit(build.build_bundle, "host", out, BAD, _cannot_reach_the_broker)
        return {GOOD: good.result(), BAD: bad.result()}


def _heartbeat(watcher: TopicWatcher) -> dict[str, Any]:
    beats = [b for b in watcher.on("/status") if b != b"offline"]
    return orjson.loads(beats[-1]) if beats else {}


def _offer(watcher: TopicWatcher, config_version: str, update: dict[str, Any]) -> None:
    document = {"v": 1, "version": config_version, "config": {"update": update}}
    watcher.publish(f"{TOPIC}/config", json.dumps(document).encode(), retain=True)


def test_a_signed_update_installs_and_reports_its_version_and_one_that_cannot_connect_is_rolled_back(
    installed: Path, update_bundles: dict[str, Path], tmp_path: Path, mosquitto
):
    key, trusted = make_update_keys(tmp_path)
    prefix = installed.parent.parent  # the session's offline install of this tree; versions/BASE stays
    assert installed.name == BASE
    os.symlink(f"versions/{BASE}", prefix / "current")
    state = tmp_path / "state"
    config = write_config(state, mosquitto.url)
    config.write_text(config.read_text() + f'[software_update]\ntrusted_keys = "{trusted}"\n')
    device = DeviceCollector(prefix, config)
    watcher = TopicWatcher(mosquitto.port, f"{TOPIC}/#")
    installer = Installer(state, prefix, trusted, restart=device.restart, python=base_python(), confirm_timeout_s=20)
    request = state / "update" / "request"
    try:
        device.start()
        assert wait_until(lambda: _heartbeat(watcher).get("version") == BASE, 30), device.log()

        # GOOD: verified, downloaded (a file:// url, as from a USB stick), staged; the installer takes it.
        bundle = update_bundles[GOOD]
        _offer(watcher, "u-1", sign_bundle(bundle, key, bundle.as_uri()))
        assert wait_until(request.exists, 30), device.log()
        assert wait_until(lambda: _heartbeat(watcher)["update"] == {"running": BASE, "state": "staged", "offered": GOOD}, 5)
        result = installer.run()
        assert (result.state, result.version, result.previous) == ("installed", GOOD, BASE), (result, device.log())
        assert os.readlink(prefix / "current") == f"versions/{GOOD}"
        assert not request.exists()
        assert wait_until(lambda: _heartbeat(watcher).get("version") == GOOD, 30), device.log()
        assert _heartbeat(watcher)["update"] == {"running": GOOD, "state": "installed"}

        # BAD cannot reach the broker: after the confirmation timeout, back on GOOD, with the reason. The
        # whole timeout is waited out, so a shorter one than GOOD needed under a loaded CI machine.
        bundle = update_bundles[BAD]
        _offer(watcher, "u-2", sign_bundle(bundle, key, bundle.as_uri()))
        assert wait_until(request.exists, 30), device.log()
        result = Installer(state, prefix, trusted, restart=device.restart, python=base_python(), confirm_timeout_s=8).run()
        assert result.state == "rolled_back", (result, device.log())
        assert result.reason == f"version {BAD} did not reach the broker within 8 s; rolled back to {GOOD}"
        assert os.readlink(prefix / "current") == f"versions/{GOOD}"
        assert sorted(p.name for p in (prefix / "versions").iterdir()) == [BASE, GOOD]
        assert wait_until(lambda: _heartbeat(watcher).get("update", {}).get("state") == "rolled_back", 30), device.log()
        beat = _heartbeat(watcher)
        assert beat["version"] == GOOD
        assert beat["update"]["rejected"] == {"version": BAD, "reason": result.reason}
    finally:
        device.stop()
        watcher.close()


def test_a_bad_signature_an_older_and_the_same_version_are_refused_with_a_reason(update_bundles: dict[str, Path], tmp_path: Path, mosquitto):
    """The tests' own collector (version BASE): refusals come before any download, and say why."""
    from tests.collector_agent.collector_process import CollectorProcess

    key, trusted = make_update_keys(tmp_path)
    state = tmp_path / "state"
    config = write_config(state, mosquitto.url)
    config.write_text(config.read_text() + f'[software_update]\ntrusted_keys = "{trusted}"\n')
    watcher = TopicWatcher(mosquitto.port, f"{TOPIC}/#")
    collector = CollectorProcess(config).start()
    bundle = update_bundles[GOOD]
    good = sign_bundle(bundle, key, bundle.as_uri())
    forged_manifest = json.loads(base64.b64decode(good["manifest"]))
    forged_manifest["version"] = "9.9.9"
    forged = {**good, "manifest": base64.b64encode(json.dumps(forged_manifest).encode()).decode()}

    def refused(version: str) -> str | None:
        update = _heartbeat(watcher).get("update", {})
        rejected = update.get("rejected", {})
        return rejected.get("reason") if update.get("state") == "refused" and rejected.get("version") == version else None

    try:
        assert wait_until(lambda: _heartbeat(watcher).get("update") == {"running": BASE, "state": "current"}, 30), collector.log()
        _offer(watcher, "bad-signature", forged)
        assert wait_until(lambda: refused("9.9.9") is not None, 30), collector.log()
        assert refused("9.9.9") == "the signature does not verify with any trusted update key"

        older = tmp_path / "old"
        older.mkdir()
        for version in ("0.0.9", BASE):  # older, and the same
            expected = f"version {version} is not newer than the running {BASE}"
            renamed = older / bundle.name.replace(GOOD, version)
            _rewrite_version(bundle, renamed, version)
            _offer(watcher, f"old-{version}", sign_bundle(renamed, key, renamed.as_uri()))
            assert wait_until(lambda: refused(version) is not None, 30), collector.log()
            assert refused(version) == expected
        assert not (state / "update" / "request").exists()
        assert "software update 9.9.9 refused: the signature does not verify" in collector.log()
    finally:
        collector.stop()
        watcher.close()


def _rewrite_version(bundle: Path, target: Path, version: str) -> None:
    """A copy of a bundle that says it is `version` (BUNDLE.json only: enough for a signed manifest)."""
    import io
    import tarfile

    old_top, new_top = bundle.name.removesuffix(".tar.gz"), target.name.removesuffix(".tar.gz")
    with tarfile.open(bundle) as source, tarfile.open(target, "w:gz") as out:
        for member in source.getmembers():
            stream = source.extractfile(member) if member.isfile() else None
            data = stream.read() if stream is not None else None
            if member.name == f"{old_top}/BUNDLE.json":
                document = json.loads(data or b"{}")
                data = json.dumps({**document, "version": version}).encode()
                member.size = len(data)
            member.name = member.name.replace(old_top, new_top, 1)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
