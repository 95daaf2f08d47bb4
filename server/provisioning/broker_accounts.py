"""Per-device broker accounts in Mosquitto's dynamic security plugin (docs/server.md, "Broker accounts").

A device `D` of unit `U` gets:
- the client (username) `U/D` (neither an HSA-id nor a device id can hold `/`, so the name is unambiguous),
  with a random password handed to the device once at enrollment; the broker keeps only its salted hash;
  bound to the MQTT client id `U/D` (the plugin's `clientid`): the account can connect under no other id,
  so it can take over no one's session (a server process's `vardkoll-server-…` included);
- the role `vardkoll-device/U/D`, allowing exactly: publish to `{prefix}/U/D/events` and `{prefix}/U/D/status`,
  subscribe to and receive `{prefix}/U/D/ack` and `{prefix}/U/D/config`. Everything else falls to the
  plugin's defaults (publish and subscribe denied).

`provision` creates or resets both (a re-enrolled device gets a new password, and the old one stops at
once: the plugin disconnects a client whose account is deleted); `remove` deletes both and is idempotent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from vardkoll.protocol.topics import DEFAULT_PREFIX, ack_topic, config_topic, device_client_id, events_topic, status_topic

from .dynsec import BrokerAddress, DynsecClient, DynsecError

ROLE_PREFIX = "vardkoll-device"
NOT_FOUND = frozenset({"Client not found", "Role not found"})


class BrokerAccountError(RuntimeError):
    """A device's broker account could not be created or removed; the message says why and where."""


@dataclass(frozen=True)
class DeviceCredentials:
    username: str
    password: str = field(repr=False)  # shown to the device once; never stored by the server


def device_username(unit: str, device: str) -> str:
    return f"{unit}/{device}"


def device_rolename(unit: str, device: str) -> str:
    return f"{ROLE_PREFIX}/{unit}/{device}"


def device_acls(unit: str, device: str, prefix: str = DEFAULT_PREFIX) -> list[dict[str, Any]]:
    """What a device may do on the broker, and nothing more."""
    allow = [
        ("publishClientSend", events_topic(unit, device, prefix)),
        ("publishClientSend", status_topic(unit, device, prefix)),
        ("subscribeLiteral", ack_topic(unit, device, prefix)),
        ("publishClientReceive", ack_topic(unit, device, prefix)),
        ("subscribeLiteral", config_topic(unit, device, prefix)),
        ("publishClientReceive", config_topic(unit, device, prefix)),
    ]
    return [{"acltype": kind, "topic": topic, "priority": 0, "allow": True} for kind, topic in allow]


class BrokerAccounts:
    """Creates and removes device accounts through an admin connection made per call (enrollment and
    retirement are rare; a long-lived admin connection would be one more thing to keep alive)."""

    def __init__(
        self,
        address: BrokerAddress,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 5.0,
        connect: Callable[[BrokerAddress, float], DynsecClient] = DynsecClient,
    ) -> None:
        self.address = address
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._connect = connect

    def provision(self, unit: str, device: str) -> DeviceCredentials:
        """Create (or reset) the device's client and role; returns the new password once."""
        username, rolename = device_username(unit, device), device_rolename(unit, device)
        password = secrets.token_urlsafe(32)
        try:
            with self._connect(self.address, self.timeout_s) as client:
                client.check(_removal(username, rolename), tolerated=NOT_FOUND)
                try:
                    client.check(
                        [
                            {
                                "command": "createRole",
                                "rolename": rolename,
                                "textname": f"vardkoll device {device} of {unit}",
                                "acls": device_acls(unit, device, self.prefix),
                            },
                            {
                                "command": "createClient",
                                "username": username,
                                "password": password,
                                "clientid": device_client_id(unit, device),
                                "textname": f"vardkoll device {device} of {unit}",
                                "roles": [{"rolename": rolename}],
                            },
                        ]
                    )
                except DynsecError:
                    client.run(_removal(username, rolename))  # leave nothing half made
                    raise
        except DynsecError as exc:
            raise BrokerAccountError(f"could not create the broker account {username}: {exc}") from None
        return DeviceCredentials(username, password)

    def remove(self, unit: str, device: str) -> None:
        """Delete the device's client (which disconnects it) and role; fine when they do not exist."""
        username = device_username(unit, device)
        try:
            with self._connect(self.address, self.timeout_s) as client:
                client.check(_removal(username, device_rolename(unit, device)), tolerated=NOT_FOUND)
        except DynsecError as exc:
            raise BrokerAccountError(f"could not remove the broker account {username}: {exc}") from None


def _removal(username: str, rolename: str) -> list[dict[str, Any]]:
    return [{"command": "deleteClient", "username": username}, {"command": "deleteRole", "rolename": rolename}]
