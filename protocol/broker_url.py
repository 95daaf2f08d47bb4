"""The broker's address as every component writes it: `mqtt://host[:port]`, or `mqtts://` for TLS."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = ("mqtt", "mqtts")


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str, default_host: str = "127.0.0.1") -> BrokerUrl:
    """Host, port (1883, or 8883 with TLS, unless given) and TLS; ValueError naming the rule otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("must be mqtt://host[:port] or mqtts://host[:port], with a port number from 1 to 65535") from None
    if parts.scheme not in SCHEMES:
        raise ValueError("must start with mqtt:// or mqtts://")
    tls = parts.scheme == "mqtts"
    return BrokerUrl(parts.hostname or default_host, port or (8883 if tls else 1883), tls)
