"""The figure object every metric returns (SPEC 2.5) and its arithmetic."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any

SMALL_N = 20


def round_half_up(value: Fraction, places: int = 4) -> float:
    """Round a non-negative exact value half up, as a person working by hand would (0.03125 → 0.0313)."""
    scale: int = 10**places
    return int(value * scale + Fraction(1, 2)) / scale


def share_of(numerator: int, denominator: int) -> float | None:
    return round_half_up(Fraction(numerator, denominator)) if denominator else None


def meets_target(numerator: int, denominator: int, target: float | None) -> bool | None:
    """None without a share or a target. Judge the exact ratio, not the rounded one: 0.89996 does not meet 0.9."""
    if not denominator or target is None:
        return None
    return Fraction(numerator, denominator) >= Fraction(str(target))


def make_figure(
    unit: str,
    metric: str,
    start: date,
    end: date,
    numerator: int,
    denominator: int,
    target: float | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    share = share_of(numerator, denominator)
    meets = meets_target(numerator, denominator, target)
    return {
        "unit": unit,
        "metric": metric,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "numerator": numerator,
        "denominator": denominator,
        "share": share,
        "target": target,
        "meets_target": meets,
        "details": {**details, "small_n": denominator < SMALL_N},
    }
