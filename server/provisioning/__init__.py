"""Device provisioning: one-time enrollment codes issued to installers and redeemed once by a collector."""

from .codes import CODE_ALPHABET, CODE_LETTERS, code_digest, new_code, normalise_code
from .enrollment import (
    FAILURE_LIMIT,
    FAILURE_WINDOW,
    CodeRefused,
    Enrolled,
    IssuedCode,
    TooManyFailures,
    issue_code,
    redeem_code,
)
from .settings import ProvisioningSettings

__all__ = [
    "CODE_ALPHABET",
    "CODE_LETTERS",
    "FAILURE_LIMIT",
    "FAILURE_WINDOW",
    "CodeRefused",
    "Enrolled",
    "IssuedCode",
    "ProvisioningSettings",
    "TooManyFailures",
    "code_digest",
    "issue_code",
    "new_code",
    "normalise_code",
    "redeem_code",
]
