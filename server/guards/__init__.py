"""What every request passes before a route sees it: dev mode on loopback only, the client's address
behind trusted proxies, and no control characters in any text parameter."""

from .control_characters import ControlCharacterGuard
from .dev_mode import LoopbackOnly
from .proxies import TrustedProxies

__all__ = ["ControlCharacterGuard", "LoopbackOnly", "TrustedProxies"]
