"""The pseudonym secret exported with a passphrase and imported on a replacement device."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from vardkoll.cli import app
from vardkoll.collector.pseudonyms import Pseudonymiser, load_or_create_secret
from vardkoll.collector.secret_export import SecretExportError, export_secret, import_secret

from .events import DEVICE, UNIT

PASSPHRASE = "korrekt häst batteri häftklammer"
FAST = (2**10, 8, 1)  # cheap scrypt for unit tests; the CLI uses the real cost


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_config(folder: Path, secret: Path) -> Path:
    config = folder / "collector.toml"
    config.write_text(f'unit = "{UNIT}"\ndevice = "{DEVICE}"\n[pseudonyms]\nsecret_file = "{secret}"\n[outbox]\npath = "{folder / "outbox.db"}"\n')
    return config


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    return path


def cli(*args: str):
    return CliRunner().invoke(app, ["collector", *args])


def test_export_then_import_on_a_new_device_gives_identical_pseudonyms(tmp_path, passphrase_file):
    old, new = tmp_path / "old", tmp_path / "new"
    old_secret = load_or_create_secret(old / "pseudonym.key")
    exported = tmp_path / "usb" / "vc.vksecret"

    result = cli(
        "export-secret",
        "--out",
        str(exported),
        "--config",
        str(write_config(old.parent / "old", old / "pseudonym.key")),
        "--passphrase-file",
        str(passphrase_file),
    )
    assert result.exit_code == 0, result.output
    assert "exporterade" in result.output and mode(exported) == 0o600
    assert old_secret.hex() not in exported.read_text()  # encrypted, not copied

    new.mkdir()
    result = cli("import-secret", str(exported), "--config", str(write_config(new, new / "pseudonym.key")), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 0, result.output
    assert "importerade" in result.output and mode(new / "pseudonym.key") == 0o600
    before, after = Pseudonymiser(old_secret), Pseudonymiser(load_or_create_secret(new / "pseudonym.key"))
    for kind, value in [("call", "TQ-1001"), ("case", "k-77"), ("patient", "p-3"), ("practitioner", "dr-9"), ("event", "x")]:
        assert after.pseudonym(kind, value) == before.pseudonym(kind, value)


def test_a_wrong_passphrase_is_a_clear_error_and_writes_nothing(tmp_path):
    exported = tmp_path / "vc.vksecret"
    exported.write_bytes(export_secret(bytes(range(32)), PASSPHRASE, cost=FAST))
    wrong = tmp_path / "wrong"
    wrong.write_text("inte rätt lösenfras alls\n")
    target = tmp_path / "new" / "pseudonym.key"
    result = cli("import-secret", str(exported), "--secret-file", str(target), "--passphrase-file", str(wrong))
    assert result.exit_code == 2
    assert "fel lösenfras" in result.output and "Traceback" not in result.output
    assert not target.exists()


@pytest.mark.parametrize("field", ["ciphertext", "unit", "salt", "nonce"])
def test_a_tampered_file_is_refused(field):
    document = orjson.loads(export_secret(bytes(range(32)), PASSPHRASE, unit=UNIT, cost=FAST))
    if field == "unit":
        document["unit"] = "SE2321000016-OTHER"
    elif field == "salt":
        document["kdf"]["salt"] = base64.b64encode(b"\x00" * 16).decode()
    else:
        raw = bytearray(base64.b64decode(document[field]))
        raw[0] ^= 1
        document[field] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SecretExportError, match="fel lösenfras, eller så har filen ändrats"):
        import_secret(orjson.dumps(document), PASSPHRASE)


@pytest.mark.parametrize(
    "document, message",
    [
        (b"not json", "är inte en exporterad pseudonymhemlighet"),
        (b'{"format": "vardkoll-pseudonym-secret", "version": 9}', "formatversion 9 stöds inte"),
        (
            b'{"format": "vardkoll-pseudonym-secret", "version": 1, "kdf": {"name": "scrypt", "n": 1073741824, "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}, "cipher": "AES-256-GCM", "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "AAAA"}',
            "orimliga parametrar",
        ),
    ],
)
def test_a_damaged_or_hostile_file_is_a_clear_error(document, message):
    with pytest.raises(SecretExportError, match=message):
        import_secret(document, PASSPHRASE)


def test_import_refuses_to_replace_an_existing_secret_unless_forced(tmp_path, passphrase_file):
    exported = tmp_path / "vc.vksecret"
    exported.write_bytes(export_secret(bytes(range(32)), PASSPHRASE, cost=FAST))
    target = tmp_path / "pseudonym.key"
    own = load_or_create_secret(target)
    result = cli("import-secret", str(exported), "--secret-file", str(target), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 2 and "finns redan" in result.output and "--force" in result.output
    assert load_or_create_secret(target) == own
    result = cli("import-secret", str(exported), "--secret-file", str(target), "--passphrase-file", str(passphrase_file), "--force")
    assert result.exit_code == 0, result.output
    assert load_or_create_secret(target) == bytes(range(32)) and mode(target) == 0o600


def test_export_refuses_a_short_passphrase_and_an_existing_output(tmp_path):
    secret = tmp_path / "pseudonym.key"
    load_or_create_secret(secret)
    short = tmp_path / "short"
    short.write_text("kort\n")
    result = cli("export-secret", "--out", str(tmp_path / "x.vksecret"), "--secret-file", str(secret), "--passphrase-file", str(short))
    assert result.exit_code == 2 and "för kort" in result.output
    assert not (tmp_path / "x.vksecret").exists()
    (tmp_path / "x.vksecret").write_text("keep me")
    result = cli("export-secret", "--out", str(tmp_path / "x.vksecret"), "--secret-file", str(secret), "--passphrase-file", str(short))
    assert result.exit_code == 2 and "finns redan" in result.output
    assert (tmp_path / "x.vksecret").read_text() == "keep me"


def test_export_without_a_secret_or_config_says_what_is_missing(tmp_path, passphrase_file):
    result = cli("export-secret", "--out", str(tmp_path / "x"), "--secret-file", str(tmp_path / "none.key"), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 2 and "finns inte" in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("unit = \n")
    result = cli("export-secret", "--out", str(tmp_path / "x"), "--config", str(broken), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 2 and "konfiguration" in result.output and "broken.toml" in result.output and "Traceback" not in result.output
