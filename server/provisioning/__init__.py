"""Device provisioning: one-time enrollment codes issued to installers and redeemed once by a collector;
replacing a device."""

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
from .replacement import UnknownDevice, replace_device
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
    "UnknownDevice",
    "code_digest",
    "issue_code",
    "new_code",
    "normalise_code",
    "redeem_code",
    "replace_device",
]
