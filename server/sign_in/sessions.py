"""A browser's session after signing in: a token of kind `sign_in` (so revoking it ends the session, and the
tokens page lists it), valid for VARDKOLL_OIDC_SESSION_HOURS and only in the session cookie."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from vardkoll.protocol.personal_number import contains_personal_number

from ..auth import issue_token
from ..auth.tokens import SIGN_IN_KIND
from ..storage.registry_tables import ApiToken
from .claim_roles import Grant

NAME_CLAIMS = ("preferred_username", "name", "email", "sub")


def who_signed_in(claims: dict[str, Any]) -> str:
    """How the access log and the tokens page name the person: the first name claim that holds no personal
    number (some providers' subject is one); failing that, a digest of the subject."""
    for claim in NAME_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str) and value.strip() and not contains_personal_number(value):
            return value.strip()[:200]
    subject = str(claims.get("sub", ""))
    return "sub:" + hashlib.sha256(subject.encode()).hexdigest()[:16]


def start_sign_in_session(session: Session, who: str, grant: Grant, lifetime: timedelta, now: datetime) -> tuple[ApiToken, str]:
    """The session's token row and its secret (for the cookie only)."""
    return issue_token(session, who, grant.role, grant.region, grant.unit, now=now, valid_for=lifetime, kind=SIGN_IN_KIND)
