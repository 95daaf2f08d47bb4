"""Server settings, from the environment (VARDKOLL_*), in one typed class.

Outside dev mode the server refuses insecure defaults: no admin token, or dev mode on a non-loopback
address. Dev mode (VARDKOLL_DEV=1) accepts events from unregistered devices.

Broker accounts (`VARDKOLL_BROKER_ACCOUNTS`): `manual` (default) leaves per-device MQTT credentials to
whoever runs the broker; `dynsec` makes the server create each device's account in Mosquitto's dynamic
security plugin at enrollment and delete it when the device is retired or replaced, with the admin
account `VARDKOLL_BROKER_ADMIN_USERNAME`/`_PASSWORD` (both required then).
"""

from __future__ import annotations

import ipaddress
import math
from urllib.parse import urlsplit

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vardkoll.protocol.broker_url import parse_broker_url
from vardkoll.protocol.topics import DEFAULT_PREFIX


class InsecureSettings(ValueError):
    pass


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VARDKOLL_", extra="ignore")

    database_url: str = "sqlite:///./vardkoll.db"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    topic_prefix: str = DEFAULT_PREFIX
    # "3.1.1" for a broker without MQTT 5 that does not answer a v5 CONNECT properly (amqtt, the demo's
    # in-process fallback), so the v5-first fallback never triggers; no shared subscriptions then.
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    # MQTT v5 shared-subscription group; several server processes split the load between them.
    share_group: str | None = "vardkoll-ingest"
    # Names this process's slot, and so its MQTT client id and session (server/ingest/mqtt_identity.py):
    # systemd template units pass %i. Unset: the lowest slot free on this host, which a restarted
    # process takes again. Never the process id: a restart must resume its own session.
    instance: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    # How long the broker keeps this process's session after a disconnect: a restart within it resumes
    # the session and what was queued; a process that never returns stops taking its share after it.
    mqtt_session_expiry_s: int = Field(default=60, ge=0, le=3600)
    # What this process does beside serving HTTP. Every process does both by default; a region that wants
    # page times to hold while traffic flows runs some slots with both off (web slots, the only ones behind
    # nginx) and the others with both on (docs/operations.md, "Scaling"). At least one slot must run the jobs.
    consume_mqtt: bool = True  # take a share of the events from the broker
    run_jobs: bool = True  # compete for the job lease: deadlines, alerts, rollups, reports, retention
    # How far an event's `at` may be ahead of the server's clock (collectors' clocks drift) before it is refused.
    max_clock_skew_s: int = Field(default=24 * 3600, ge=0, le=7 * 24 * 3600)
    # Proxies whose X-Forwarded-For names the client (comma-separated addresses or networks); default none.
    trusted_proxies: str = ""
    admin_token: SecretStr | None = None
    dev: bool = False
    max_batch_events: int = Field(default=5000, ge=1)
    max_payload_bytes: int = Field(default=4 << 20, ge=1024)
    broker_accounts: Literal["manual", "dynsec"] = "manual"
    broker_admin_url: str | None = None  # where the admin account connects; default: mqtt_url
    broker_admin_username: str | None = None
    broker_admin_password: SecretStr | None = None
    broker_admin_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # The CA that signed the broker's certificate, when it is not in the system's store (a region's own CA).
    mqtt_ca_file: str | None = None
    # `/metrics` answers a bearer token: this one (for the scraper), or the admin token. Dev mode: open.
    metrics_token: SecretStr | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Lifetimes and retention (docs/privacy.md). Raw events must outlive the continuity window (18 months).
    token_lifetime_days: int = Field(default=365, ge=1, le=3650)  # people's API tokens
    device_token_lifetime_days: int = Field(default=730, ge=1, le=3650)
    event_retention_days: int = Field(default=730, ge=570, le=36500)
    dead_letter_retention_days: int = Field(default=90, ge=1, le=3650)
    access_log_retention_days: int = Field(default=1095, ge=30, le=36500)
    # Sign-in for the pages through the region's identity provider (OpenID Connect, authorization code with
    # PKCE; server/sign_in/, docs/server.md "Sign-in"). Off while the issuer is unset.
    oidc_issuer: str | None = None  # discovery at {issuer}/.well-known/openid-configuration
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None  # none: a public client (PKCE alone)
    oidc_redirect_base: str | None = None  # this site as people reach it; the provider sends them back to {base}/logga-in/retur
    oidc_scopes: str = "openid profile"
    oidc_session_hours: int = Field(default=12, ge=1, le=24)  # a signed-in browser's session, then sign in again
    oidc_clock_skew_s: int = Field(default=60, ge=0, le=600)  # tolerated between the provider's clock and ours

    @field_validator("mqtt_url", "broker_admin_url")
    @classmethod
    def _broker_url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_broker_url(url)
        return url

    @model_validator(mode="after")
    def _broker_admin_given(self) -> "ServerSettings":
        if self.broker_accounts == "dynsec" and not (self.broker_admin_username and self.broker_admin_password):
            raise ValueError(
                "VARDKOLL_BROKER_ACCOUNTS=dynsec needs VARDKOLL_BROKER_ADMIN_USERNAME and VARDKOLL_BROKER_ADMIN_PASSWORD "
                "(the dynsec admin account, deploy/broker/README.md); or set VARDKOLL_BROKER_ACCOUNTS=manual"
            )
        return self

    @model_validator(mode="after")
    def _sign_in_complete(self) -> "ServerSettings":
        if self.oidc_issuer is None:
            return self
        missing = [
            name for name, value in (("VARDKOLL_OIDC_CLIENT_ID", self.oidc_client_id), ("VARDKOLL_OIDC_REDIRECT_BASE", self.oidc_redirect_base)) if not value
        ]
        if missing:
            raise ValueError(f"VARDKOLL_OIDC_ISSUER is set, so sign-in needs {' and '.join(missing)} too (docs/server.md, 'Sign-in')")
        for name, url in (("VARDKOLL_OIDC_ISSUER", self.oidc_issuer), ("VARDKOLL_OIDC_REDIRECT_BASE", self.oidc_redirect_base or "")):
            parts = urlsplit(url)
            if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
                raise ValueError(f"{name} must be an https:// address (http:// only on loopback, for tests), not {url!r}")
        if "openid" not in self.oidc_scopes.split():
            raise ValueError(f"VARDKOLL_OIDC_SCOPES must include openid (got {self.oidc_scopes!r})")
        return self

    @property
    def sign_in_enabled(self) -> bool:
        return self.oidc_issuer is not None

    def check_secure(self, host: str | None = None) -> None:
        """Refuse settings that are only fit for a developer's machine: no admin token or a weak one
        outside dev mode; dev mode on a non-loopback `host` (when known: the app, which cannot see the
        address it is bound to, refuses dev-mode requests that arrive on any other address)."""
        if self.dev and host is not None and not is_loopback(host):
            raise InsecureSettings(f"dev mode (VARDKOLL_DEV=1) only serves on a loopback address, not {host}")
        if not self.dev and self.admin_token is None:
            raise InsecureSettings(f"set VARDKOLL_ADMIN_TOKEN (or VARDKOLL_DEV=1 on a developer machine); {MAKE_A_TOKEN}")
        if not self.dev and self.admin_token is not None:
            weakness = token_weakness(self.admin_token.get_secret_value())
            if weakness:
                raise InsecureSettings(f"VARDKOLL_ADMIN_TOKEN is too weak: {weakness}; {MAKE_A_TOKEN}")

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",") if part.strip()]

    @model_validator(mode="after")
    def _trusted_proxies_readable(self) -> "ServerSettings":
        try:
            _ = self.trusted_proxy_networks
        except ValueError as exc:
            raise ValueError(f"VARDKOLL_TRUSTED_PROXIES must be comma-separated addresses or networks (10.0.0.5, 10.0.0.0/24): {exc}") from None
        return self

    @property
    def mqtt_host(self) -> str:
        return parse_broker_url(self.mqtt_url).host

    @property
    def mqtt_port(self) -> int:
        return parse_broker_url(self.mqtt_url).port

    @property
    def mqtt_tls(self) -> bool:
        return parse_broker_url(self.mqtt_url).tls


MAKE_A_TOKEN = 'make a good one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
_TOKEN_MIN_LENGTH = 24
_TOKEN_MIN_DISTINCT = 10
_TOKEN_MIN_BITS = 128


def token_weakness(token: str) -> str | None:
    """Why a secret token is too easy to guess, or None. The estimate is length × log2(the alphabet its
    character classes span); `secrets.token_urlsafe(32)` gives about 250 bits, 24 × 'a' is refused."""
    if len(token) < _TOKEN_MIN_LENGTH:
        return f"it has {len(token)} characters, at least {_TOKEN_MIN_LENGTH} are needed"
    if len(set(token)) < _TOKEN_MIN_DISTINCT:
        return f"it has only {len(set(token))} different characters, at least {_TOKEN_MIN_DISTINCT} are needed"
    alphabet = sum(
        size
        for present, size in [
            (any(c.islower() for c in token), 26),
            (any(c.isupper() for c in token), 26),
            (any(c.isdigit() for c in token), 10),
            (any(not c.isalnum() for c in token), 32),
        ]
        if present
    )
    bits = len(token) * math.log2(alphabet)
    if bits < _TOKEN_MIN_BITS:
        return f"about {bits:.0f} bits of randomness, at least {_TOKEN_MIN_BITS} are needed (make it longer or mix letters, digits and symbols)"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
