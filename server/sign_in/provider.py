"""The region's identity provider, through Authlib: the authorization request (code flow with PKCE), the code
exchanged for tokens, and the ID token checked by Authlib against the provider's published keys (signature,
issuer, audience, expiry, nonce, at_hash). Nothing here checks a token by hand.

Discovery and the key set are fetched on first use and kept for the process; a key id the set does not know
makes Authlib fetch the set again (the provider rotated its keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import warnings

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
from joserfc.errors import JoseError

with warnings.catch_warnings():
    # Authlib would rather have httpx2; the server speaks httpx everywhere, which Authlib still takes.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client

from ..settings import ServerSettings

CALLBACK_PATH = "/logga-in/retur"
SIGNED_OUT_PATH = "/logga-in?utloggad=1"
TIMEOUT_S = 10.0


class SignInRefused(Exception):
    """The provider's answer does not sign anyone in. `reason` is short, has no token in it, and goes into the
    access log (e.g. `expired_token`, `bad_signature`, `access_denied`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:200]


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and what its answer must match."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class _ProviderClient(OAuth2Mixin, OpenIDMixin, BaseApp):  # Authlib's framework-free sync client, over httpx
    client_cls = OAuth2Client


class IdentityProvider:
    """One per process. `transport` is the seam for tests (an httpx transport in front of the real provider)."""

    def __init__(self, settings: ServerSettings, transport: httpx.BaseTransport | None = None) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_base  # checked by the settings
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.redirect_uri = settings.oidc_redirect_base.rstrip("/") + CALLBACK_PATH
        self.signed_out_uri = settings.oidc_redirect_base.rstrip("/") + SIGNED_OUT_PATH
        self.clock_skew_s = settings.oidc_clock_skew_s
        secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        client_kwargs: dict[str, Any] = {
            "scope": settings.oidc_scopes,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic" if secret else "none",
            "timeout": TIMEOUT_S,
        }
        if transport is not None:
            client_kwargs["transport"] = transport
        self._client = _ProviderClient(
            None,  # no web framework: the attempt is kept in the database (attempts.py), not in a framework session
            name="region",
            client_id=self.client_id,
            client_secret=secret,
            server_metadata_url=self.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs=client_kwargs,
        )

    def authorization(self) -> Authorization:
        """A new authorization request; raises SignInRefused when the provider cannot be reached."""
        try:
            made = self._client.create_authorization_url(redirect_uri=self.redirect_uri)
        except (httpx.HTTPError, AuthlibBaseError, RuntimeError, ValueError) as exc:
            raise SignInRefused(f"provider unreachable: {type(exc).__name__}") from None
        return Authorization(made["url"], made["state"], made["nonce"], made["code_verifier"])

    def claims(self, code: str, code_verifier: str, nonce: str) -> dict[str, Any]:
        """The code exchanged at the token endpoint, and the ID token's claims once Authlib has checked it."""
        try:
            token = self._client.fetch_access_token(redirect_uri=self.redirect_uri, code=code, code_verifier=code_verifier)
            claims = self._client.parse_id_token(token, nonce, claims_options={"iss": {"essential": True, "value": self.issuer}}, leeway=self.clock_skew_s)
        except JoseError as exc:
            raise SignInRefused(f"id token refused: {exc.error}") from None
        except AuthlibBaseError as exc:
            raise SignInRefused(f"token endpoint: {exc.error}") from None
        except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as exc:
            raise SignInRefused(f"token endpoint: {type(exc).__name__}") from None
        if claims is None:
            raise SignInRefused("the provider sent no id token (is 'openid' among VARDKOLL_OIDC_SCOPES?)")
        return dict(claims)

    def logout_url(self) -> str | None:
        """The provider's end_session_endpoint (RP-initiated logout), back to our sign-in page; None without one."""
        try:
            endpoint = self._client.load_server_metadata().get("end_session_endpoint")
        except (httpx.HTTPError, AuthlibBaseError, ValueError):
            return None
        if not endpoint:
            return None
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode({'client_id': self.client_id, 'post_logout_redirect_uri': self.signed_out_uri})}"
