"""Access control: API tokens with roles, and what each role may see."""

from .dependencies import CurrentPrincipal, current_principal, forbidden, role_gate
from .roles import Principal, Role
from .scope import (
    ADMINS,
    DEAD_LETTER_READERS,
    DEVICE_MANAGERS,
    EVENT_SENDERS,
    FIGURE_READERS,
    REGISTRY_READERS,
    OutOfScope,
    in_scope,
    require_region,
    require_role,
    require_unit,
    visible_units,
)
from .tokens import ADMIN_TOKEN_NAME, TokenScopeError, check_scope, issue_token, list_tokens, principal_for, revoke_token

__all__ = [
    "ADMINS",
    "ADMIN_TOKEN_NAME",
    "DEAD_LETTER_READERS",
    "DEVICE_MANAGERS",
    "EVENT_SENDERS",
    "FIGURE_READERS",
    "REGISTRY_READERS",
    "CurrentPrincipal",
    "OutOfScope",
    "Principal",
    "Role",
    "TokenScopeError",
    "check_scope",
    "current_principal",
    "forbidden",
    "in_scope",
    "issue_token",
    "list_tokens",
    "principal_for",
    "require_region",
    "require_role",
    "require_unit",
    "revoke_token",
    "role_gate",
    "visible_units",
]
