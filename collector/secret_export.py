"""The pseudonym secret, exported encrypted with an installer's passphrase and imported on a new device.

A replacement device that imports the old device's secret makes the same pseudonyms, so the server keeps
linking a call's callback, a case's assessment and a patient's visits across the swap.

File format (JSON, UTF-8, mode 0600), version 1:

    {"format": "vardkoll-pseudonym-secret", "version": 1,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
     "cipher": "AES-256-GCM", "nonce": "<base64, 12 bytes>",
     "unit": "SE…", "device": "…", "created_at": "2026-…Z",
     "ciphertext": "<base64: the secret, then the 16-byte tag>"}

The key is scrypt(passphrase, salt, n, r, p) → 32 bytes; every field except `ciphertext` is the AES-GCM
associated data (canonical JSON, sorted keys), so a changed unit, salt or cost parameter fails the tag
just as a wrong passphrase does. Cost parameters read from a file are bounded, so a hostile file cannot
make an import take minutes or gigabytes.

Messages are for installers and in Swedish; they never include the secret or the passphrase.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from .pseudonyms import Pseudonymiser

FORMAT = "vardkoll-pseudonym-secret"
VERSION = 1
MIN_PASSPHRASE_CHARS = 12
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # 32 MiB, about a second on a Raspberry Pi 3
_MAX_N, _MAX_R, _MAX_P = 2**20, 16, 4
_SALT_BYTES, _NONCE_BYTES = 16, 12


class SecretExportError(RuntimeError):
    """The export or import cannot be done; the message (Swedish) says what is wrong and what to do."""


@dataclass(frozen=True)
class ImportedSecret:
    secret: bytes
    unit: str | None
    device: str | None
    created_at: str | None


def fingerprint(secret: bytes) -> str:
    """A short check value to compare two devices' secrets (reveals nothing usable about the secret)."""
    return Pseudonymiser(secret).pseudonym("event", "vardkoll secret fingerprint")[:10]


def export_secret(
    secret: bytes,
    passphrase: str,
    *,
    unit: str | None = None,
    device: str | None = None,
    now: datetime | None = None,
    cost: tuple[int, int, int] = (SCRYPT_N, SCRYPT_R, SCRYPT_P),
) -> bytes:
    """The encrypted export file's bytes."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise SecretExportError(f"lösenfrasen är för kort: minst {MIN_PASSPHRASE_CHARS} tecken")
    n, r, p = cost
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(_NONCE_BYTES)
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": {"name": "scrypt", "n": n, "r": r, "p": p, "salt": _b64(salt)},
        "cipher": "AES-256-GCM",
        "nonce": _b64(nonce),
        "unit": unit,
        "device": device,
        "created_at": (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds"),
    }
    key = _derive(passphrase, salt, n, r, p)
    ciphertext = AESGCM(key).encrypt(nonce, secret, _associated(header))
    return orjson.dumps({**header, "ciphertext": _b64(ciphertext)}, option=orjson.OPT_INDENT_2) + b"\n"


def import_secret(document: bytes, passphrase: str, *, source: str = "filen") -> ImportedSecret:
    """The secret in an export file; `SecretExportError` for a wrong passphrase or a damaged file."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header, salt, nonce, ciphertext, (n, r, p) = _parse(document, source)
    key = _derive(passphrase, salt, n, r, p)
    try:
        secret = AESGCM(key).decrypt(nonce, ciphertext, _associated(header))
    except InvalidTag:
        raise SecretExportError(f"{source}: fel lösenfras, eller så har filen ändrats; försök igen med rätt lösenfras") from None
    if len(secret) < 16:
        raise SecretExportError(f"{source}: hemligheten i filen är för kort; använd en export från vardkoll")
    return ImportedSecret(secret, header.get("unit"), header.get("device"), header.get("created_at"))


def read_secret_file_for_export(path: Path) -> bytes:
    """The device's current secret (as `pseudonyms` stores it), with installer-facing errors."""
    from .pseudonyms import SecretFileError, read_secret

    if not path.exists():
        raise SecretExportError(f"{path} finns inte: enheten har ingen pseudonymhemlighet att exportera")
    try:
        return read_secret(path)
    except SecretFileError as exc:
        raise SecretExportError(f"kan inte läsa hemligheten: {exc}") from None
    except OSError as exc:
        raise SecretExportError(f"kan inte läsa {path} ({exc.strerror}); kör kommandot som samma användare som insamlaren") from None


def write_secret_file(path: Path, secret: bytes) -> None:
    """Write the secret in the device's format (hex), mode 0600, atomically."""
    from .enrollment import write_private

    write_private(path, secret.hex() + "\n")


# -- details -----------------------------------------------------------------------------------------


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _associated(header: dict[str, Any]) -> bytes:
    return orjson.dumps(header, option=orjson.OPT_SORT_KEYS)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse(document: bytes, source: str) -> tuple[dict[str, Any], bytes, bytes, bytes, tuple[int, int, int]]:
    damaged = f"{source}: är inte en exporterad pseudonymhemlighet från vardkoll, eller är skadad"
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError:
        raise SecretExportError(damaged) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SecretExportError(damaged)
    if data.get("version") != VERSION:
        raise SecretExportError(f"{source}: formatversion {data.get('version')!r} stöds inte (den här versionen läser {VERSION}); uppdatera vardkoll")
    try:
        kdf = data["kdf"]
        if kdf["name"] != "scrypt" or data["cipher"] != "AES-256-GCM":
            raise SecretExportError(f"{source}: okänd kryptering ({kdf['name']}, {data['cipher']})")
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        salt, nonce = base64.b64decode(kdf["salt"], validate=True), base64.b64decode(data["nonce"], validate=True)
        ciphertext = base64.b64decode(data["ciphertext"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise SecretExportError(damaged) from None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise SecretExportError(f"{source}: orimliga parametrar för nyckelhärledningen (n={n}, r={r}, p={p}); filen är skadad")
    if len(salt) < 8 or len(nonce) != _NONCE_BYTES or len(ciphertext) < 16 + 16:
        raise SecretExportError(damaged)
    header = {key: value for key, value in data.items() if key != "ciphertext"}
    return header, salt, nonce, ciphertext, (n, r, p)
