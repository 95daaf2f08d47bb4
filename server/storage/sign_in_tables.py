"""Sign-in through the region's identity provider: which claim values give which role, and sign-ins under way."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .utc_datetime import UtcDateTime


class SignInRole(SQLModel, table=True):
    """A claim value in the provider's ID token (a group, a role) and the role and scope it gives."""

    __tablename__ = "sign_in_roles"
    __table_args__ = (UniqueConstraint("claim", "value", name="uq_sign_in_roles_claim_value"),)

    id: int | None = Field(default=None, primary_key=True)
    claim: str = Field(max_length=100)  # e.g. groups, roles
    value: str = Field(max_length=200)  # a string claim equal to it, or a list claim holding it
    role: str = Field(max_length=32)
    region: str | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_type=UtcDateTime)
    created_by: str = Field(max_length=200)


class SignInAttempt(SQLModel, table=True):
    """A sign-in between the redirect to the provider and its answer: what the answer must match. Keyed by the
    SHA-256 of the browser's attempt cookie, used once, kept at most ATTEMPT_LIFETIME (server/sign_in/attempts.py)."""

    __tablename__ = "sign_in_attempts"

    key_sha256: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=128)
    nonce: str = Field(max_length=128)
    code_verifier: str = Field(max_length=128)
    next_path: str = Field(max_length=500)
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)
