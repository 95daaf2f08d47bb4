"""Signed update offers and the installer's decisions, without installing anything (tests/edge_install/
test_updates.py installs real bundles)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vardkoll.collector.updates import UpdateManifest, Updater, is_newer, sign
from vardkoll.collector.updates.install import Installer, current_version, switch_current

BUNDLE = "vardkoll-collector-0.2.0-x86_64.tar.gz"


@pytest.fixture
def release_key(tmp_path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def offer(tmp_path: Path, key: Ed25519PrivateKey, version: str = "0.2.0", content: bytes = b"a bundle", **changes: Any) -> dict[str, Any]:
    source = tmp_path / "usb" / BUNDLE
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(content)
    fields = {
        "version": version,
        "arch": "x86_64",
        "python": "3.11",
        "bundle": BUNDLE,
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        **changes,
    }
    return {**sign(UpdateManifest(**fields), key), "url": source.as_uri()}


def updater(tmp_path: Path, running: str = "0.1.0") -> Updater:
    return Updater(tmp_path / "state", tmp_path / "keys", running, machine="x86_64", python="3.11")


def refusal(agent: Updater) -> str:
    status = agent.status()
    assert status["state"] == "refused", status
    return status["rejected"]["reason"]


def test_a_signed_newer_bundle_for_this_machine_is_staged_once(tmp_path, release_key):
    agent = updater(tmp_path)
    document = offer(tmp_path, release_key)
    assert agent.consider(document) == "staged"
    assert (tmp_path / "state" / "update" / BUNDLE).read_bytes() == b"a bundle"
    assert (tmp_path / "state" / "update" / "request").read_text() == "0.2.0\n"
    assert agent.status() == {"running": "0.1.0", "state": "staged", "offered": "0.2.0"}
    assert agent.consider(document) == "unchanged"  # the retained document again after a reconnect


def test_a_signature_by_an_unknown_key_is_refused_before_anything_is_fetched(tmp_path, release_key):
    agent = updater(tmp_path)
    assert agent.consider(offer(tmp_path, Ed25519PrivateKey.generate())) == "refused"
    assert refusal(agent) == "the signature does not verify with any trusted update key"
    assert not (tmp_path / "state" / "update" / BUNDLE).exists()


def test_a_changed_manifest_breaks_the_signature(tmp_path, release_key):
    import base64

    document = offer(tmp_path, release_key)
    manifest = json.loads(base64.b64decode(document["manifest"]))
    document["manifest"] = base64.b64encode(json.dumps({**manifest, "version": "9.0.0"}).encode()).decode()
    agent = updater(tmp_path)
    assert agent.consider(document) == "refused"
    assert agent.status()["rejected"] == {"version": "9.0.0", "reason": "the signature does not verify with any trusted update key"}


@pytest.mark.parametrize("version", ["0.1.0", "0.0.9", "0.1"])
def test_an_older_or_the_same_version_is_refused(tmp_path, release_key, version):
    agent = updater(tmp_path)
    assert agent.consider(offer(tmp_path, release_key, version=version)) == "refused"
    assert refusal(agent) == f"version {version} is not newer than the running 0.1.0"


def test_a_bundle_for_another_machine_or_with_other_bytes_is_refused(tmp_path, release_key):
    agent = updater(tmp_path)
    assert agent.consider(offer(tmp_path, release_key, arch="aarch64")) == "refused"
    assert refusal(agent) == "version 0.2.0 is built for aarch64 / Python 3.11, this device is x86_64 / Python 3.11"
    document = offer(tmp_path, release_key)
    (tmp_path / "usb" / BUNDLE).write_bytes(b"a bundlX")  # same size, other bytes
    assert agent.consider(document) == "refused"
    assert refusal(agent) == "version 0.2.0: the downloaded bundle does not match the signed SHA-256 and size"
    assert sorted(p.name for p in (tmp_path / "state" / "update").iterdir()) == ["state.json"]


def test_without_a_trusted_key_nothing_is_taken_and_a_refused_version_may_come_again(tmp_path, release_key):
    agent = updater(tmp_path)
    (tmp_path / "keys" / "release.pub").rename(tmp_path / "release.pub")
    document = offer(tmp_path, release_key)
    assert agent.consider(document) == "refused"
    assert refusal(agent) == "no trusted update key is installed (/etc/vardkoll-collector/update-keys/*.pub)"
    (tmp_path / "release.pub").rename(tmp_path / "keys" / "release.pub")
    assert agent.consider(document) == "staged"


def test_versions_compare_as_numbers():
    assert is_newer("0.10.0", "0.9.9") and is_newer("1.0", "0.99") and not is_newer("0.2", "0.2.0")
    assert is_newer("0.1.0", "unknown")  # a collector not installed from a bundle


# -- the installer ----------------------------------------------------------------------------------------


def device(tmp_path: Path, *versions: str) -> Path:
    prefix = tmp_path / "opt"
    for version in versions:
        (prefix / "versions" / version).mkdir(parents=True)
    switch_current(prefix, versions[-1])
    return prefix


def test_the_installer_checks_the_signature_again_and_refuses_a_forged_offer(tmp_path, release_key):
    prefix = device(tmp_path, "0.1.0")
    agent = updater(tmp_path)
    assert agent.consider(offer(tmp_path, release_key)) == "staged"
    forged = offer(tmp_path, Ed25519PrivateKey.generate())
    (tmp_path / "state" / "update" / "offer.json").write_text(json.dumps(forged))  # written by a compromised collector
    restarts: list[int] = []
    result = Installer(tmp_path / "state", prefix, tmp_path / "keys", restart=lambda: restarts.append(1)).run()
    assert result is not None and (result.state, result.reason) == ("refused", "the signature does not verify with any trusted update key")
    assert current_version(prefix) == "0.1.0" and restarts == []
    assert not (tmp_path / "state" / "update" / "request").exists()
    assert agent.status()["rejected"] == {"version": "0.2.0", "reason": "the signature does not verify with any trusted update key"}


def test_a_trial_cut_short_is_rolled_back_at_the_next_run_unless_it_was_confirmed(tmp_path):
    prefix = device(tmp_path, "0.1.0", "0.2.0")  # current -> 0.2.0, being tried when the power went
    folder = tmp_path / "state" / "update"
    folder.mkdir(parents=True)
    (folder / "trial.json").write_text(json.dumps({"version": "0.2.0", "previous": "0.1.0"}))
    (folder / "request").write_text("0.2.0\n")
    restarts: list[int] = []
    result = Installer(tmp_path / "state", prefix, tmp_path / "keys", restart=lambda: restarts.append(1)).run()
    assert result is not None and result.state == "rolled_back"
    assert result.reason == "the device stopped while trying version 0.2.0; rolled back to 0.1.0"
    assert current_version(prefix) == "0.1.0" and restarts == [1]
    assert not (prefix / "versions" / "0.2.0").exists() and not (folder / "trial.json").exists()

    prefix = device(tmp_path / "b", "0.1.0", "0.2.0")
    folder = tmp_path / "b" / "state" / "update"
    folder.mkdir(parents=True)
    (folder / "trial.json").write_text(json.dumps({"version": "0.2.0", "previous": "0.1.0"}))
    (folder / "confirmed").write_text("0.2.0\n")
    result = Installer(tmp_path / "b" / "state", prefix, tmp_path / "keys", restart=lambda: None).run()
    assert result is not None and result.state == "installed" and current_version(prefix) == "0.2.0"
    assert os.path.isdir(prefix / "versions" / "0.1.0")  # the previous version stays for a manual rollback


def test_the_running_collector_does_not_load_cryptography_until_an_update_is_offered():
    """Its OpenSSL bindings cost about 10 MB of resident memory (SPEC 6: under 40 MB on a Pi)."""
    import subprocess
    import sys

    probe = "import sys, vardkoll.collector.agent; print('cryptography' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent)
    assert result.stdout.strip() == "False", result.stderr


def test_the_install_update_command_says_what_it_did(tmp_path, release_key):
    from typer.testing import CliRunner

    from vardkoll.cli import app

    prefix = device(tmp_path, "0.1.0")
    arguments = ["collector", "install-update", "--state-dir", str(tmp_path / "state"), "--prefix", str(prefix), "--keys", str(tmp_path / "keys")]
    nothing = CliRunner().invoke(app, arguments)
    assert nothing.exit_code == 0 and "no staged update" in nothing.output
    assert updater(tmp_path).consider(offer(tmp_path, release_key, version="0.0.5")) == "refused"  # older: never staged
    (tmp_path / "state" / "update" / "request").write_text("0.0.5\n")
    refused = CliRunner().invoke(app, arguments)
    assert refused.exit_code == 1 and "version 0.0.5: refused (no staged offer to install)" in refused.output
