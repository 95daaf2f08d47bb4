"""Keyed pseudonyms made at the edge (SPEC 3.1, domain research 4.2).

A pseudonym is HMAC-SHA256 over `kind NUL value` with a secret that exists only on this device, written
in 26 lower-case letters. Letters only means a pseudonym can never contain a personal identity number,
a phone number or any other run of digits, whatever the source id was.

- Deterministic: the same (secret, kind, value) always gives the same pseudonym, so a call's offer and
  its callback, or a patient's visits, link up on the server.
- Kind-separated: a case and a call with the same source id get different pseudonyms.
- Practitioners are one kind: the `practitioner` of a visit and the `fixed_doctor` of a listing must
  come out equal for the continuity metric, so connectors pass both as kind `practitioner`.

Two schemes, both keyed with the device's secret and both letters only; `collector/pipeline.py` is the
only caller that hands them raw ids. Each has `rotated_kinds` (calls and cases) that the pipeline keys
with one reporting period's key instead (`for_period`, the key schedule in `collector/key_schedule.py`);
patients, practitioners and event ids always use the secret itself:
- `Pseudonymiser` (the connectors'): as above; event id `e` + the pseudonym of kind `event` over
  (connector, source key, type).
- `FirmwareBridgePseudonymiser` (the firmware bridge's, kept from before the bridge went through the
  pipeline so that its ids and cases do not change across an upgrade): HMAC-SHA256 over
  `domain US part US part …`, the first 120 bits as 24 letters of a–z and A–F; event id `fw-` + that over
  the press identity, case pseudonyms `k` + that (docs/firmware-protocol.md, section 4).

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
from typing import Final, Literal, Protocol

ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz"
PSEUDONYM_LENGTH: Final = 22  # 26**22 ≈ 2**103: collisions are out of the question
SECRET_BYTES: Final = 32

PseudonymKind = Literal["call", "case", "patient", "practitioner", "event"]
KINDS: Final[tuple[str, ...]] = ("call", "case", "patient", "practitioner", "event")


class PseudonymScheme(Protocol):
    """How a device's secret turns raw source ids into what goes on the wire (used by `Pipeline` only)."""

    def event_id(self, connector: str, source_key: str, type: str) -> str:
        """The id of the event a connector read from `source_key`: the same inputs, the same id."""
        ...

    def pseudonym(self, kind: str, value: str) -> str:
        """The pseudonym of source id `value` of the given kind."""
        ...

    @property
    def rotated_kinds(self) -> tuple[str, ...]:
        """The kinds keyed per reporting period (calls and cases)."""
        ...

    def for_period(self, period: str) -> "PseudonymScheme":
        """The same scheme keyed with the key of `period` (`YYYY-MM`)."""
        ...


class SecretFileError(RuntimeError):
    """The secret file is missing, unreadable, malformed or readable by others; the message says what to do."""


class Pseudonymiser:
    ROTATED_KINDS: Final = ("call", "case")

    def __init__(self, secret: bytes, length: int = PSEUDONYM_LENGTH) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym secret must be at least 16 bytes")
        if not 16 <= length <= 64:
            raise ValueError("pseudonym length must be 16–64 letters")
        self._secret = secret
        self._length = length
        self._periods: dict[str, Pseudonymiser] = {}

    @property
    def rotated_kinds(self) -> tuple[str, ...]:
        return self.ROTATED_KINDS

    def for_period(self, period: str) -> "Pseudonymiser":
        """This scheme keyed with the period's key (`period_key`): the same id, another period, another pseudonym."""
        scheme = self._periods.get(period)
        if scheme is None:
            scheme = self._periods[period] = Pseudonymiser(period_key(self._secret, period), self._length)
        return scheme

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

    def event_id(self, connector: str, source_key: str, type: str) -> str:
        return "e" + self.pseudonym("event", f"{connector}\x1f{source_key}\x1f{type}")

    def __repr__(self) -> str:  # never show the secret
        return f"<Pseudonymiser length={self._length}>"


# 32 letters: each carries 5 bits; 24 letters = 120 bits of the HMAC.
BRIDGE_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyzABCDEF"
BRIDGE_LENGTH: Final = 24


class FirmwareBridgePseudonymiser:
    """The firmware bridge's scheme. Its values are pinned by tests: a clinic that upgrades while a
    ticket's case is open must see the contact and the assessment under the same case pseudonym, and a
    press re-sent across the upgrade must keep its event id (the outbox and the server count it once).

    The source key and raw values are parts joined by US (0x1F), e.g. (device id, store id, local seq);
    the hashed message is `domain US value`, so a value of one domain never meets another's."""

    KINDS: Final = ("case", "case-unlinked")  # ticket cases; a panel press of its own (no ticket)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym secret must be at least 16 bytes")
        self._secret = secret
        self._periods: dict[str, FirmwareBridgePseudonymiser] = {}

    @property
    def rotated_kinds(self) -> tuple[str, ...]:
        return self.KINDS  # both are cases

    def for_period(self, period: str) -> "FirmwareBridgePseudonymiser":
        """This scheme keyed with the period's key: event ids stay those of the secret (`fw-` + the press)."""
        scheme = self._periods.get(period)
        if scheme is None:
            scheme = self._periods[period] = FirmwareBridgePseudonymiser(period_key(self._secret, period))
        return scheme

    def _letters(self, domain: str, value: str) -> str:
        message = f"{domain}\x1f{value}".encode("utf-8")
        digest = int.from_bytes(hmac.new(self._secret, message, hashlib.sha256).digest()[:15], "big")
        return "".join(BRIDGE_ALPHABET[(digest >> (5 * i)) & 0x1F] for i in range(BRIDGE_LENGTH))

    def event_id(self, connector: str, source_key: str, type: str) -> str:
        """`fw-` and the hash of the press alone: a press keeps its id whatever its input was mapped to."""
        return "fw-" + self._letters("event", source_key)

    def pseudonym(self, kind: str, value: str) -> str:
        if kind not in self.KINDS:
            raise ValueError(f"unknown firmware-bridge pseudonym kind {kind!r}; expected one of: {', '.join(self.KINDS)}")
        return "k" + self._letters(kind, value)

    def __repr__(self) -> str:  # never show the secret
        return "<FirmwareBridgePseudonymiser>"


def keyed_digest(secret: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of `message` under `secret`: the one keyed hash, for the key schedule (`key_schedule.py`)."""
    return hmac.new(secret, message, hashlib.sha256).digest()


def period_key(secret: bytes, period: str) -> bytes:
    """The key of one reporting period (`YYYY-MM`), derived from the device's secret: nothing else is
    needed to make it again, so the secret's backup restores every period's key."""
    return keyed_digest(secret, b"vardkoll period key v1\x1f" + period.encode("ascii"))


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
