"""Signed software updates: the signed document (`manifest`), the collector's side (`offer`: verify,
download, stage, report) and the installer's side (`install`: verify again, install, try, roll back)."""

from .manifest import UpdateManifest, UpdateRefused, is_newer, load_public_keys, sign, verify
from .offer import Updater, UpdatePaths

__all__ = ["UpdateManifest", "UpdatePaths", "UpdateRefused", "Updater", "is_newer", "load_public_keys", "sign", "verify"]
