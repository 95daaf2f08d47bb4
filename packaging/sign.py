"""Sign a collector bundle for a software update: `./dev sign-update ...` (docs/collector.md, "Software updates").

    ./dev sign-update keygen --out keys/vardkoll-update          # keys/vardkoll-update.key (0600), .pub
    ./dev sign-update sign dist/vardkoll-collector-0.2.0-aarch64.tar.gz --key keys/vardkoll-update.key \\
        --url https://vardkoll.example.se/updates/vardkoll-collector-0.2.0-aarch64.tar.gz

`sign` writes BUNDLE.update.json: the remote config sections `{"update": {...}}` to push to a device with
`vardkoll admin devices push-config UNIT DEVICE BUNDLE.update.json --version V` (or the API). The private
key stays with whoever releases; devices get the .pub (install.sh --update-key).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vardkoll.collector.updates.manifest import UpdateManifest, file_sha256, key_id, sign, version_key


def keygen(out: Path) -> None:
    key = Ed25519PrivateKey.generate()
    private = out.with_suffix(".key")
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    out.with_suffix(".pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    print(f"{private} (keep it secret) and {out.with_suffix('.pub')} (for the devices), key id {key_id(key.public_key())}")


def bundle_info(bundle: Path) -> dict[str, str]:
    top = bundle.name.removesuffix(".tar.gz")
    with tarfile.open(bundle) as tar:
        member = tar.extractfile(f"{top}/BUNDLE.json")
        if member is None:
            raise SystemExit(f"sign.py: {bundle} has no {top}/BUNDLE.json; is it made by packaging/build.py?")
        return json.loads(member.read())


def sign_bundle(bundle: Path, key_path: Path, url: str) -> Path:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"sign.py: {key_path} is not an Ed25519 private key")
    info = bundle_info(bundle)
    version_key(info["version"])  # only dotted numbers can be compared on the device
    manifest = UpdateManifest(
        version=info["version"], arch=info["arch"], python=info["python"], bundle=bundle.name, sha256=file_sha256(bundle), size=bundle.stat().st_size
    )
    out = bundle.with_name(bundle.name.removesuffix(".tar.gz") + ".update.json")
    out.write_text(json.dumps({"update": {**sign(manifest, key), "url": url}}, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev sign-update", description="Ed25519 keys and signed update documents for collector bundles.")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("keygen", help="make a key pair: OUT.key (private, 0600) and OUT.pub")
    make.add_argument("--out", type=Path, required=True)
    signing = commands.add_parser("sign", help="sign a bundle: writes BUNDLE.update.json (the sections to push)")
    signing.add_argument("bundle", type=Path)
    signing.add_argument("--key", type=Path, required=True)
    signing.add_argument("--url", required=True, help="where devices download the bundle (https://, or file:///path for a USB stick)")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        keygen(args.out)
    else:
        print(sign_bundle(args.bundle, args.key, args.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
