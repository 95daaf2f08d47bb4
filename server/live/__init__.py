"""Live figures: server-sent events pushed when a unit's data changes."""

from .hub import LiveHub, Subscription

__all__ = ["LiveHub", "Subscription"]
