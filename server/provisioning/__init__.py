"""Device provisioning: one-time enrollment codes issued to installers and redeemed once by a collector;
per-device broker accounts (Mosquitto dynamic security); retiring and replacing a device."""

from .broker_accounts import BrokerAccountError, BrokerAccounts, DeviceCredentials, device_acls, device_rolename, device_username

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
from .replacement import replace_device, retire_device
from .settings import ProvisioningSettings

__all__ = [
    "BrokerAccountError",
    "BrokerAccounts",
    "DeviceCredentials",
    "device_acls",
    "device_rolename",
    "device_username",
    "retire_device",
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
    "replace_device",
]
