"""vardkoll: care-guarantee compliance for Swedish primary care."""

__version__ = "0.1.0"
