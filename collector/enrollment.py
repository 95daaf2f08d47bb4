"""`vardkoll collector enroll --server URL --code CODE`: redeem a one-time code, write the device's files.

What it does, in order:
1. refuses to run when the config file exists already (unless `force`), before the code is spent;
2. POSTs `{code, device}` to `{server}/api/v1/enroll` (httpx; TLS verified, `ca_file` if given);
3. creates the pseudonym secret if the device has none (mode 0600; an existing one is kept, so a
   re-enrolled device keeps linking to its history);
4. when the server hands out the device's broker account (VARDKOLL_BROKER_ACCOUNTS=dynsec on the server),
   writes its password to `mqtt-password` beside the config (mode 0600); it is shown only this once;
5. writes the `device` API token to `token_file` and the collector config (unit, device, broker URL and
   topic prefix, MQTT username and password file, outbox and secret paths) to `config_path`, both mode
   0600, atomically.

When the server makes no broker accounts (manual broker setup), the written config says where to put the
username and password the broker's operator gives. Connectors are added to the config by the installer
afterwards.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vardkoll.protocol.field_rules import DEVICE_ID_RULE, is_device_id

from .config import parse_config
from .pseudonyms import load_or_create_secret

DEFAULT_CONFIG = Path("/etc/vardkoll-collector/collector.toml")
DEFAULT_STATE = Path("/var/lib/vardkoll-collector")


class EnrollmentError(RuntimeError):
    """Enrollment failed; the message says what to do."""


@dataclass(frozen=True)
class EnrollResult:
    unit: str
    device: str
    config_path: Path
    token_file: Path
    secret_file: Path
    secret_created: bool
    mqtt_password_file: Path | None = None  # None: the broker account comes from a manual setup


def default_device_id() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64]
    return name or "collector"


def enroll(
    server: str,
    code: str,
    device: str | None = None,
    config_path: Path = DEFAULT_CONFIG,
    state_dir: Path = DEFAULT_STATE,
    token_file: Path | None = None,
    ca_file: Path | None = None,
    force: bool = False,
    timeout_s: float = 30.0,
    transport: Any = None,  # an httpx transport, for tests
) -> EnrollResult:
    import httpx  # only enrollment needs it: the running collector does not

    device = device or default_device_id()
    if not is_device_id(device):
        raise EnrollmentError(f"the device id {DEVICE_ID_RULE} (use --device)")
    config_path, state_dir = Path(config_path), Path(state_dir)
    token_file = Path(token_file) if token_file else state_dir / "api-token"
    if config_path.exists() and not force:
        raise EnrollmentError(f"{config_path} exists already; move it away or pass --force (the code has not been used)")
    url = server.rstrip("/") + "/api/v1/enroll"
    if not url.startswith("https://") and not re.match(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:|/)", url):
        raise EnrollmentError("the server URL must start with https:// (plain http only for localhost)")
    try:
        with httpx.Client(timeout=timeout_s, verify=str(ca_file) if ca_file else True, transport=transport) as client:
            response = client.post(url, json={"code": code, "device": device})
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach {server} ({type(exc).__name__}); check the URL and the network") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = None
        hint = {403: "the code was refused", 429: "too many attempts; wait and try again", 422: "the request was refused"}.get(
            response.status_code, "the server refused"
        )
        raise EnrollmentError(f"{hint} (HTTP {response.status_code}){': ' + str(detail) if isinstance(detail, str) else ''}")
    body = response.json()
    unit, token, mqtt = body["unit"], body["token"], body["mqtt"]

    secret_file = state_dir / "pseudonym.key"
    secret_created = not secret_file.exists()
    state_dir.mkdir(parents=True, exist_ok=True)
    load_or_create_secret(secret_file)  # mode 0600; an existing secret is kept (and checked)

    username, password = mqtt.get("username"), mqtt.get("password")
    password_file = config_path.parent / "mqtt-password" if username and password else None
    document = render_config(unit, body["device"], mqtt["url"], mqtt["topic_prefix"], state_dir, secret_file, username, password_file)
    parse_config(tomllib.loads(document))  # what is written can be loaded
    write_private(token_file, token + "\n")
    if password_file is not None:
        write_private(password_file, password + "\n")
    write_private(config_path, document)
    return EnrollResult(unit, body["device"], config_path, token_file, secret_file, secret_created, password_file)


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def render_config(
    unit: str,
    device: str,
    mqtt_url: str,
    topic_prefix: str,
    state_dir: Path,
    secret_file: Path,
    mqtt_username: str | None = None,
    mqtt_password_file: Path | None = None,
) -> str:
    if mqtt_username and mqtt_password_file:
        credentials = f"""# The device's own broker account, made by the server at enrollment:
username = {_toml(mqtt_username)}
password_file = {_toml(str(mqtt_password_file))}   # mode 0600"""
    else:
        credentials = f"""# The server made no broker account (manual broker setup): ask the broker's operator for one.
# username = {_toml(unit + "/" + device)}
# password_file = "/etc/vardkoll-collector/mqtt-password"   # mode 0600"""
    return f"""# Written by `vardkoll collector enroll`. See docs/collector.md and deploy/collector/collector.example.toml.
unit = {_toml(unit)}
device = {_toml(device)}

[mqtt]
url = {_toml(mqtt_url)}
topic_prefix = {_toml(topic_prefix)}
{credentials}
# ca_file = "/etc/vardkoll-collector/ca.pem"

[outbox]
path = {_toml(str(state_dir / "outbox.db"))}

[pseudonyms]
secret_file = {_toml(str(secret_file))}

# Add one [[connectors]] table per source (docs/collector.md, "Connectors").
"""


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 whatever the umask, atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, text.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
