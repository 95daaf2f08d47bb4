"""Sign-in for the pages through the region's identity provider (OpenID Connect, authorization code with PKCE,
through Authlib): the provider client, the attempts under way, the claim-to-role mapping and the sessions it
starts. The pages' routes are in server/web/sign_in_routes.py, the mapping's API in server/api/sign_in_roles.py."""

from .attempts import ATTEMPT_COOKIE, ATTEMPT_LIFETIME, begin_attempt, finish_attempt
from .claim_roles import Grant, MappingRefused, NoRole, add_mapping, describe, grant_for, list_mappings, remove_mapping
from .provider import CALLBACK_PATH, Authorization, IdentityProvider, SignInRefused
from .sessions import start_sign_in_session, who_signed_in

__all__ = [
    "ATTEMPT_COOKIE",
    "ATTEMPT_LIFETIME",
    "CALLBACK_PATH",
    "Authorization",
    "Grant",
    "IdentityProvider",
    "MappingRefused",
    "NoRole",
    "SignInRefused",
    "add_mapping",
    "begin_attempt",
    "describe",
    "finish_attempt",
    "grant_for",
    "list_mappings",
    "remove_mapping",
    "start_sign_in_session",
    "who_signed_in",
]
