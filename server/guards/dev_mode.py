"""Dev mode accepts events from unregistered devices: it serves only connections to a loopback address.

The app cannot see the address uvicorn was told to bind (`uvicorn --factory ... --host 0.0.0.0`), so
it looks at each connection's local address instead: a request that reached this process on any other
address is refused. `vardkoll server` refuses to start in that case too, with a clearer message.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from ..settings import is_loopback

REFUSAL = b"dev mode (VARDKOLL_DEV=1) serves only on a loopback address; unset VARDKOLL_DEV and set VARDKOLL_ADMIN_TOKEN to serve others\n"


def _arrived_from_outside(scope: Scope) -> bool:
    server = scope.get("server")
    if not server or not server[0]:
        return False  # a unix socket: only this host reaches it
    try:
        ipaddress.ip_address(server[0])
    except ValueError:
        return False  # a name, not an address (an in-process test client)
    return not is_loopback(server[0])


class LoopbackOnly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and _arrived_from_outside(scope):
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await send({"type": "http.response.body", "body": REFUSAL})
            return
        await self.app(scope, receive, send)
