"""A sign-in under way: between the redirect to the provider and its answer, the database keeps the state, the
nonce and the PKCE verifier, keyed by a random cookie of this browser. Any server process can take the answer,
each attempt is used once, and none outlives ATTEMPT_LIFETIME."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..storage.sign_in_tables import SignInAttempt
from .provider import Authorization, SignInRefused

ATTEMPT_COOKIE = "vardkoll_sign_in"
ATTEMPT_LIFETIME = timedelta(minutes=10)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def begin_attempt(session: Session, authorization: Authorization, next_path: str, now: datetime) -> str:
    """Store the attempt; returns the key for the browser's cookie. Attempts that were never finished go now."""
    session.execute(delete(SignInAttempt).where(SignInAttempt.created_at < now - ATTEMPT_LIFETIME))
    key = secrets.token_urlsafe(32)
    session.add(
        SignInAttempt(
            key_sha256=_digest(key),
            state=authorization.state,
            nonce=authorization.nonce,
            code_verifier=authorization.code_verifier,
            next_path=next_path[:500],
            created_at=now,
        )
    )
    return key


def finish_attempt(session: Session, key: str | None, state: str, now: datetime) -> SignInAttempt:
    """The attempt this browser began, taken out of the store; SignInRefused when there is none that fits."""
    row = session.get(SignInAttempt, _digest(key)) if key else None
    if row is None:
        raise SignInRefused("no sign-in under way in this browser (cookie missing, used or expired)")
    session.delete(row)
    session.flush()
    session.expunge(row)
    if not hmac.compare_digest(row.state.encode(), state.encode()):
        raise SignInRefused("the answer's state is not this browser's")
    if row.created_at < now - ATTEMPT_LIFETIME:
        raise SignInRefused("the sign-in took longer than 10 minutes")
    return row
