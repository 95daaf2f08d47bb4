"""Keyed pseudonyms made at the edge (SPEC 3.1, domain research 4.2).

A pseudonym is HMAC-SHA256 over `kind NUL value` with a secret that exists only on this device, written
in 26 lower-case letters. Letters only means a pseudonym can never contain a personal identity number,
a phone number or any other run of digits, whatever the source id was.

- Deterministic: the same (secret, kind, value) always gives the same pseudonym, so a call's offer and
  its callback, or a patient's visits, link up on the server.
- Kind-separated: a case and a call with the same source id get different pseudonyms.
- Practitioners are one kind: the `practitioner` of a visit and the `fixed_doctor` of a listing must
  come out equal for the continuity metric, so connectors pass both as kind `practitioner`.

The secret is 32 random bytes from `secrets`, kept in a file of mode 0600; losing it means new
pseudonyms for everybody (history no longer links), so back it up when a device is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Final, Literal

ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz"
PSEUDONYM_LENGTH: Final = 22  # 26**22 ≈ 2**103: collisions are out of the question
SECRET_BYTES: Final = 32

PseudonymKind = Literal["call", "case", "patient", "practitioner", "event"]
KINDS: Final[tuple[str, ...]] = ("call", "case", "patient", "practitioner", "event")


class SecretFileError(RuntimeError):
    """The secret file is missing, unreadable, malformed or readable by others; the message says what to do."""


class Pseudonymiser:
    def __init__(self, secret: bytes, length: int = PSEUDONYM_LENGTH) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym secret must be at least 16 bytes")
        if not 16 <= length <= 64:
            raise ValueError("pseudonym length must be 16–64 letters")
        self._secret = secret
        self._length = length

    def pseudonym(self, kind: str, value: str) -> str:
        """The pseudonym of source id `value` of the given kind."""
        if kind not in KINDS:
            raise ValueError(f"unknown pseudonym kind {kind!r}; expected one of: {', '.join(KINDS)}")
        digest = hmac.new(self._secret, kind.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()
        number = int.from_bytes(digest, "big")
        letters = []
        for _ in range(self._length):
            number, index = divmod(number, 26)
            letters.append(ALPHABET[index])
        return "".join(letters)

    def __repr__(self) -> str:  # never show the secret
        return f"<Pseudonymiser length={self._length}>"


def load_or_create_secret(path: Path | str) -> bytes:
    """Read the device's secret, creating it (mode 0600, atomically) the first time."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_secret(path)
    return read_secret(path)


def _create_secret(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        os.write(descriptor, secrets.token_hex(SECRET_BYTES).encode() + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    _fsync_folder(path.parent)


def read_secret(path: Path) -> bytes:
    """The secret in `path`; `SecretFileError` if it is readable by others or malformed."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretFileError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        secret = bytes.fromhex(path.read_bytes().decode("ascii").strip())
    except ValueError:  # not ASCII (UnicodeDecodeError is a ValueError) or not hex
        raise SecretFileError(f"{path} does not hold a hex secret; restore it from the backup") from None
    if len(secret) < 16:
        raise SecretFileError(f"{path} holds a secret shorter than 16 bytes; restore it from the backup")
    return secret


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
