"""The client's address: the connection's peer, or what a trusted proxy says in X-Forwarded-For.

Only proxies named in VARDKOLL_TRUSTED_PROXIES are believed (default: none). Anyone else can write the
header, and the enrollment guessing limit counts per client: a believed header would let one guesser
pose as many. `vardkoll server` turns uvicorn's own proxy-header handling off, which believes loopback.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, app: ASGIApp, trusted: list[Network]) -> None:
        self.app = app
        self.trusted = trusted

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and self.trusted and client and self._trusts(client[0]):
            forwarded = b",".join(value for name, value in scope["headers"] if name == b"x-forwarded-for").decode("latin-1")
            # Walk from the right (the nearest hop) past our own proxies; the first other address is the client.
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            while hops and self._trusts(hops[-1]):
                hops.pop()
            if hops:
                scope = {**scope, "client": (hops[-1], 0)}
        await self.app(scope, receive, send)
