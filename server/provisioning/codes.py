"""Enrollment codes: 10 letters in two groups of five (`HKXRT-MWQAP`), letters only.

The alphabet leaves out I, L, O (read as 1, 1, 0) and the Swedish letters: 23**10 ≈ 2**45 codes. A code
is read aloud or typed by an installer, so case, spaces and dashes are ignored when it is redeemed. It
is stored only as its SHA-256: a code is valid for at most a day, redeemed once, and guessing is limited
per client, so a slow hash buys nothing here.
"""

from __future__ import annotations

import hashlib
import secrets

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LETTERS = 10
GROUP = 5


def new_code() -> str:
    letters = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LETTERS))
    return "-".join(letters[i : i + GROUP] for i in range(0, CODE_LETTERS, GROUP))


def normalise_code(code: str) -> str:
    """The code's letters, upper case, without spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def code_digest(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()
