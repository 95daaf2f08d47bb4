"""Signed software updates end to end, with real installs: bundles built from this tree as versions
0.1.1 and 0.1.2 (the second unable to reach the broker), signed with `packaging/sign.py`, offered
through the retained remote config topic of a real Mosquitto, staged by a running collector, installed
by the installer (`collector/updates/install.py`, what `vardkoll-collector-update.service` runs as root)
and reported in the heartbeat."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.collector_agent.collector_process import EXAMPLE_DEVICE, EXAMPLE_UNIT, write_config
from tests.integration.mqtt_helpers import wait_until
from vardkoll.collector.updates.install import Installer

from .bundles import DeviceCollector, TopicWatcher, base_python, load_build_module, make_update_keys, sign_bundle, stage

TOPIC = f"vardkoll/v1/{EXAMPLE_UNIT}/{EXAMPLE_DEVICE}"


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
    return {"0.1.1": build.build_bundle("host", out, "0.1.1"), "0.1.2": build.build_bundle("host", out, "0.1.2", _cannot_reach_the_broker)}


def _heartbeat(watcher: TopicWatcher) -> dict[str, Any]:
    beats = [b for b in watcher.on("/status") if b != b"offline"]
    return orjson.loads(beats[-1]) if beats else {}


def _offer(watcher: TopicWatcher, config_version: str, update: dict[str, Any]) -> None:
    document = {"v": 1, "version": config_version, "config": {"update": update}}
    watcher.publish(f"{TOPIC}/config", json.dumps(document).encode(), retain=True)


def test_a_signed_update_installs_and_reports_its_version_and_one_that_cannot_connect_is_rolled_back(
        unpacked_bundle: Path, update_bundles: dict[str, Path], tmp_path: Path, mosquitto):
    key, trusted = make_update_keys(tmp_path)
    prefix = tmp_path / "opt" / "vardkoll-collector"
    stage(unpacked_bundle, prefix)
    os.symlink("versions/0.1.0", prefix / "current")
    state = tmp_path / "state"
    config = write_config(state, mosquitto.url)
    config.write_text(config.read_text() + f'[software_update]\ntrusted_keys = "{trusted}"\n')
    device = DeviceCollector(prefix, config)
    watcher = TopicWatcher(mosquitto.port, f"{TOPIC}/#")
    installer = Installer(state, prefix, trusted, restart=device.restart, python=base_python(), confirm_timeout_s=20)
    request = state / "update" / "request"
    try:
        device.start()
        assert wait_until(lambda: _heartbeat(watcher).get("version") == "0.1.0", 30), device.log()

        # 0.1.1: verified, downloaded (a file:// url, as from a USB stick), staged; the installer takes it.
        bundle = update_bundles["0.1.1"]
        _offer(watcher, "u-1", sign_bundle(bundle, key, bundle.as_uri()))
        assert wait_until(request.exists, 30), device.log()
        assert wait_until(lambda: _heartbeat(watcher)["update"] == {"running": "0.1.0", "state": "staged", "offered": "0.1.1"}, 5)
        result = installer.run()
        assert (result.state, result.version, result.previous) == ("installed", "0.1.1", "0.1.0"), (result, device.log())
        assert os.readlink(prefix / "current") == "versions/0.1.1"
        assert not request.exists()
        assert wait_until(lambda: _heartbeat(watcher).get("version") == "0.1.1", 30), device.log()
        assert _heartbeat(watcher)["update"] == {"running": "0.1.1", "state": "installed"}

        # 0.1.2 cannot reach the broker: after the confirmation timeout, back on 0.1.1, with the reason.
        bundle = update_bundles["0.1.2"]
        _offer(watcher, "u-2", sign_bundle(bundle, key, bundle.as_uri()))
        assert wait_until(request.exists, 30), device.log()
        result = installer.run()
        assert result.state == "rolled_back", (result, device.log())
        assert result.reason == "version 0.1.2 did not reach the broker within 20 s; rolled back to 0.1.1"
        assert os.readlink(prefix / "current") == "versions/0.1.1"
        assert sorted(p.name for p in (prefix / "versions").iterdir()) == ["0.1.0", "0.1.1"]
        assert wait_until(lambda: _heartbeat(watcher).get("update", {}).get("state") == "rolled_back", 30), device.log()
        beat = _heartbeat(watcher)
        assert beat["version"] == "0.1.1"
        assert beat["update"]["rejected"] == {"version": "0.1.2", "reason": result.reason}
    finally:
        device.stop()
        watcher.close()


def test_a_bad_signature_an_older_and_the_same_version_are_refused_with_a_reason(update_bundles: dict[str, Path], tmp_path: Path, mosquitto):
    """The tests' own collector (version 0.1.0): refusals come before any download, and say why."""
    from tests.collector_agent.collector_process import CollectorProcess

    key, trusted = make_update_keys(tmp_path)
    state = tmp_path / "state"
    config = write_config(state, mosquitto.url)
    config.write_text(config.read_text() + f'[software_update]\ntrusted_keys = "{trusted}"\n')
    watcher = TopicWatcher(mosquitto.port, f"{TOPIC}/#")
    collector = CollectorProcess(config).start()
    bundle = update_bundles["0.1.1"]
    good = sign_bundle(bundle, key, bundle.as_uri())
    forged_manifest = json.loads(base64.b64decode(good["manifest"]))
    forged_manifest["version"] = "9.9.9"
    forged = {**good, "manifest": base64.b64encode(json.dumps(forged_manifest).encode()).decode()}

    def refused(version: str) -> str | None:
        update = _heartbeat(watcher).get("update", {})
        rejected = update.get("rejected", {})
        return rejected.get("reason") if update.get("state") == "refused" and rejected.get("version") == version else None

    try:
        assert wait_until(lambda: _heartbeat(watcher).get("update") == {"running": "0.1.0", "state": "current"}, 30), collector.log()
        _offer(watcher, "bad-signature", forged)
        assert wait_until(lambda: refused("9.9.9") is not None, 30), collector.log()
        assert refused("9.9.9") == "the signature does not verify with any trusted update key"

        older = tmp_path / "old"
        older.mkdir()
        for version, expected in (("0.0.9", "version 0.0.9 is not newer than the running 0.1.0"),
                                  ("0.1.0", "version 0.1.0 is not newer than the running 0.1.0")):
            renamed = older / bundle.name.replace("0.1.1", version)
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
