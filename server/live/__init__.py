"""Live figures: server-sent events pushed when a unit's data changes."""

from .hub import LiveHub, Subscription
from .warm_pages import WarmPages

__all__ = ["LiveHub", "Subscription", "WarmPages"]
