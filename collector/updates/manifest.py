"""The signed update document: which bundle, which version, signed with Ed25519.

    {"manifest": "<base64 of the manifest's exact JSON bytes>", "signature": "<base64 Ed25519 signature of them>",
     "key": "<key id>"}

The manifest: `{"v": 1, "product": "vardkoll-collector", "version": "0.2.0", "arch": "aarch64", "python": "3.11",
"bundle": "vardkoll-collector-0.2.0-aarch64.tar.gz", "sha256": "…", "size": N}`. The signature covers the
manifest's bytes as they travel (base64, so no JSON round trip can change them), so the version and the
bundle's hash are signed and the bundle itself needs no signature of its own. Made by
`packaging/sign.py sign`; checked by the collector before it downloads anything and again, as root, by
the installer before it installs (`collector/updates/install.py`).

Versions are dotted numbers (`0.2.0`, `2026.12.1`): a version is newer when its numbers are, so an
update can only go forward.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# cryptography is imported where a key is used, not here: its OpenSSL bindings cost the collector about
# 10 MB of resident memory, and an update is offered rarely.

PRODUCT = "vardkoll-collector"
FORMAT = 1
VERSION_PATTERN = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")
MAX_BUNDLE_BYTES = 256 * 1024 * 1024


class UpdateRefused(ValueError):
    """The update cannot be taken; the message says why (it quotes no secret and is safe to report)."""


def version_key(version: str) -> tuple[int, ...]:
    if not VERSION_PATTERN.match(version):
        raise UpdateRefused(f"version {version[:64]!r} is not dotted numbers such as 0.2.0")
    parts = tuple(int(part) for part in version.split("."))
    return parts + (0,) * (4 - len(parts))  # 0.2 == 0.2.0


def is_newer(candidate: str, running: str) -> bool:
    try:
        current = version_key(running)
    except UpdateRefused:
        return True  # an unknown running version (not installed from a bundle) takes any signed version
    return version_key(candidate) > current


@dataclass(frozen=True)
class UpdateManifest:
    version: str
    arch: str
    python: str
    bundle: str
    sha256: str
    size: int
    product: str = PRODUCT
    v: int = FORMAT

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> "UpdateManifest":
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise UpdateRefused("the signed manifest is not JSON") from None
        if not isinstance(document, dict) or document.get("v") != FORMAT or document.get("product") != PRODUCT:
            raise UpdateRefused(f"the signed manifest is not a {PRODUCT} update of format {FORMAT}")
        try:
            manifest = cls(
                version=str(document["version"]),
                arch=str(document["arch"]),
                python=str(document["python"]),
                bundle=str(document["bundle"]),
                sha256=str(document["sha256"]).lower(),
                size=int(document["size"]),
            )
        except (KeyError, TypeError, ValueError):
            raise UpdateRefused("the signed manifest lacks version, arch, python, bundle, sha256 or size") from None
        version_key(manifest.version)
        if not re.fullmatch(r"[0-9a-f]{64}", manifest.sha256) or not 0 < manifest.size <= MAX_BUNDLE_BYTES:
            raise UpdateRefused(f"version {manifest.version}: the manifest's sha256 or size is not valid")
        if "/" in manifest.bundle or manifest.bundle.startswith("."):
            raise UpdateRefused(f"version {manifest.version}: the bundle's name is not a plain file name")
        return manifest


def key_id(public_key: "Ed25519PublicKey") -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_keys(place: Path) -> dict[str, "Ed25519PublicKey"]:
    """Trusted keys: one PEM file, or every `*.pub` in a folder (an empty dict when there are none)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    files = sorted(place.glob("*.pub")) if place.is_dir() else [place] if place.is_file() else []
    keys: dict[str, Ed25519PublicKey] = {}
    for path in files:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError):
            continue  # not a key: it cannot vouch for anything
        if isinstance(key, Ed25519PublicKey):
            keys[key_id(key)] = key
    return keys


def sign(manifest: UpdateManifest, private_key: "Ed25519PrivateKey") -> dict[str, str]:
    data = manifest.encode()
    return {
        "manifest": base64.b64encode(data).decode(),
        "signature": base64.b64encode(private_key.sign(data)).decode(),
        "key": key_id(private_key.public_key()),
    }


def verify(document: Any, trusted: dict[str, "Ed25519PublicKey"]) -> UpdateManifest:
    """The manifest of a signed update document, or UpdateRefused saying why not."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(document, dict) or not isinstance(document.get("manifest"), str) or not isinstance(document.get("signature"), str):
        raise UpdateRefused('the update needs "manifest" and "signature" (as made by packaging/sign.py)')
    if not trusted:
        raise UpdateRefused("no trusted update key is installed (/etc/vardkoll-collector/update-keys/*.pub)")
    try:
        data = base64.b64decode(document["manifest"], validate=True)
        signature = base64.b64decode(document["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise UpdateRefused("the update's manifest or signature is not base64") from None
    keys = [trusted[document["key"]]] if document.get("key") in trusted else list(trusted.values())
    for key in keys:
        try:
            key.verify(signature, data)
            break
        except InvalidSignature:
            continue
    else:
        raise UpdateRefused("the signature does not verify with any trusted update key")
    return UpdateManifest.decode(data)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
