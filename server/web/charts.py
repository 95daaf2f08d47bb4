"""Charts as SVG made on the server: no chart library, no script, nothing for the CSP to refuse.

Colours come from classes in vardkoll.css (presentation only; every chart has a text alternative: a
`<title>`/`<desc>` and a table beside it). A missing share ("ingen data") is a gap in a line, never a
point at zero; shares are drawn on a fixed 0–100 % axis so that no chart exaggerates a change.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Callable, NamedTuple

from markupsafe import Markup, escape

from vardkoll.server.metrics.call_hours import CallHour

from .formatting import number, percent

_ids = count()
SEGMENTS = (  # bottom to top; the legend and the table use the same order
    ("contact", "fick kontakt samma dag"),
    ("pending", "väntar på återuppringning"),
    ("abandoned", "lade på utan kontakt"),
    ("other", "övriga utan kontakt samma dag"),
    ("rejected", "avvisade (kön full eller stängd)"),
)


def _tick_step(peak: float, ticks: int = 4) -> int:
    """A whole step of 1, 2 or 5 × 10^k so that `ticks` steps reach at least `peak`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * ticks >= peak:
                return step * factor
        step *= 10


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def hour_label(hour: CallHour, hours: list[CallHour]) -> str:
    """ "08–09"; on a DST day, the hour's offset as well ("02–03 sommartid")."""
    end = (hour.start.astimezone(timezone.utc) + timedelta(hours=1)).astimezone(hour.start.tzinfo)
    # The wall clock: "01–03" where spring skips 02; in autumn the first 02 hour ends at 02 again, and
    # is "02–03 sommartid" in words.
    end_hour = end.hour if end.hour != hour.start.hour else (hour.start.hour + 1) % 24
    label = f"{hour.start:%H}–{end_hour:02d}"
    if len(hours) != 24 and any(other is not hour and other.start.hour == hour.start.hour for other in hours):
        label += " sommartid" if hour.start.dst() else " normaltid"
    return label


def hourly_calls(hours: list[CallHour], as_of: datetime | None, title: str) -> Markup:
    """Offered calls per hour as stacked bars by outcome, rejected calls stacked on top, hatched."""
    width, height, left, right, top, bottom = 760, 250, 44, 8, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((h.offered + h.rejected for h in hours), default=0)
    y_max = _tick_step(peak) * 4
    band = plot_w / len(hours)
    bar = band * 0.74
    uid = next(_ids)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" class="chart hourly" role="img" aria-labelledby="hc-t{uid} hc-d{uid}">',
        f'<title id="hc-t{uid}">{escape(title)}</title><desc id="hc-d{uid}">{escape(_hourly_summary(hours))}</desc>',
        f'<defs><pattern id="hatch{uid}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" class="hatch-bg"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>',
    ]
    for tick in range(5):
        value = y_max * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{_fmt(y + 4)}" class="tick" text-anchor="end">{number(value)}</text>')
    for index, hour in enumerate(hours):
        x = left + band * index + (band - bar) / 2
        if hour.start.hour % 2 == 0 or len(hours) < 24:
            parts.append(f'<text x="{_fmt(x + bar / 2)}" y="{height - 10}" class="tick" text-anchor="middle">{hour.start:%H}</text>')
        if not hour.known:
            continue
        base = top + plot_h
        label = hour_label(hour, hours)
        for name, meaning in SEGMENTS:
            value = getattr(hour, name)
            if not value:
                continue
            h = plot_h * value / y_max
            base -= h
            fill = f' fill="url(#hatch{uid})"' if name == "rejected" else ""
            parts.append(
                f'<rect x="{_fmt(x)}" y="{_fmt(base)}" width="{_fmt(bar)}" height="{_fmt(h)}" class="seg-{name}"{fill}>'
                f"<title>kl. {label}: {value} {meaning}</title></rect>"
            )
    if as_of is not None and hours and hours[0].start <= as_of:
        elapsed = (as_of.astimezone(timezone.utc) - hours[0].start.astimezone(timezone.utc)) / timedelta(hours=1)
        if elapsed < len(hours):
            x = left + band * elapsed
            parts.append(
                f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{top}" y2="{top + plot_h}" class="now"/><text x="{_fmt(x + 4)}" y="{top + 10}" class="tick">nu</text>'
            )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/></svg>')
    return Markup("".join(parts))


def _hourly_summary(hours: list[CallHour]) -> str:
    offered = sum(h.offered for h in hours)
    if not offered and not any(h.rejected for h in hours):
        return "Inga samtal under dagen hittills."
    busiest = max(hours, key=lambda h: (h.offered, -hours.index(h)))
    totals = {name: sum(getattr(h, name) for h in hours) for name, _ in SEGMENTS}
    outcome = ", ".join(f"{totals[name]} {meaning}" for name, meaning in SEGMENTS)
    return f"{offered} erbjudna samtal, flest kl. {hour_label(busiest, hours)} ({busiest.offered}). Utfall: {outcome}."


class TrendPoint(NamedTuple):
    """A tuple, not a dataclass: Regionvy builds and hashes 12 per unit on every request (as a
    dataclass, 2 ms of a warm page of 230 units)."""

    label: str  # "47" (a week), "nov"
    long_label: str  # "vecka 47 2026", "november 2026"
    share: float | None
    numerator: int
    denominator: int
    small_n: bool
    partial: bool  # the current period, not over yet


def trend(points: list[TrendPoint], target: float | None, title: str, css: str = "trend") -> Markup:
    """Share per period on a 0–100 % axis, a dashed target line, gaps where there is no data, hollow
    markers where the denominator is small (< 20), the unfinished period marked with "*"."""
    width, height, left, right, top, bottom = 380, 170, 48, 10, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(points), 1)
    uid = next(_ids)

    def y_of(share: float) -> float:
        return top + plot_h * (1 - share)

    described = "; ".join(f"{p.long_label}{' (hittills)' if p.partial else ''}: {percent(p.share)}" for p in points)
    target_text = f" Mål {percent(target, 0)}." if target is not None else ""
    parts = [
        f'<svg viewBox="0 0 {width} {height}" class="chart {css}" role="img" aria-labelledby="tr-t{uid} tr-d{uid}">',
        f'<title id="tr-t{uid}">{escape(title)}</title><desc id="tr-d{uid}">{escape(described + "." + target_text)}</desc>',
    ]
    for tick in (0, 0.5, 1):
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" class="grid"/>'
            f'<text x="{left - 5}" y="{_fmt(y + 4)}" class="tick" text-anchor="end">{int(tick * 100)}&#160;%</text>'
        )
    if target is not None:
        y = y_of(target)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" class="target"/>')
    xs = [left + step * (i + 0.5) for i in range(len(points))]
    parts += _line_runs(xs, points, y_of, lone_radius=None)
    for index, (x, point) in enumerate(zip(xs, points)):
        if len(points) <= 13 or index % 2 == len(points) % 2:
            parts.append(f'<text x="{_fmt(x)}" y="{height - 10}" class="tick" text-anchor="middle">{escape(point.label)}{"*" if point.partial else ""}</text>')
        if point.share is None:
            parts.append(f'<text x="{_fmt(x)}" y="{_fmt(top + plot_h - 4)}" class="gap" text-anchor="middle">–</text>')
            continue
        marker = "point small" if point.small_n else "point"
        parts.append(
            f'<circle cx="{_fmt(x)}" cy="{_fmt(y_of(point.share))}" r="3.6" class="{marker}">'
            f"<title>{escape(point.long_label)}: {percent(point.share)} ({number(point.numerator)} av {number(point.denominator)})"
            f"{' – litet underlag' if point.small_n else ''}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(points: list[TrendPoint], target: float | None, title: str) -> Markup:
    """A tiny trend for one unit in Regionvy's small multiples (same encoding, no axis labels)."""
    width, height, pad = 132, 40, 4
    step = (width - 2 * pad) / max(len(points), 1)
    uid = next(_ids)

    def y_of(share: float) -> float:
        return pad + (height - 2 * pad) * (1 - share)

    described = "; ".join(f"{p.long_label}: {percent(p.share)}" for p in points)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" class="chart spark" role="img" aria-labelledby="sp-t{uid} sp-d{uid}">',
        f'<title id="sp-t{uid}">{escape(title)}</title><desc id="sp-d{uid}">{escape(described)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" class="spark-bg"/>',
    ]
    if target is not None:
        parts.append(f'<line x1="0" x2="{width}" y1="{_fmt(y_of(target))}" y2="{_fmt(y_of(target))}" class="target"/>')
    xs = [pad + step * (i + 0.5) for i in range(len(points))]
    parts += _line_runs(xs, points, y_of, lone_radius=2)
    parts.append("</svg>")
    return Markup("".join(parts))


def _line_runs(xs: list[float], points: list[TrendPoint], y_of: Callable[[float], float], lone_radius: float | None) -> list[str]:
    """One polyline per run of periods with data: a gap ("ingen data") breaks the line, never drops to
    zero. A run of a single period is a dot of `lone_radius` (None: left to the caller's markers)."""
    parts: list[str] = []
    run: list[str] = []
    for x, point in zip(xs + [0.0], points + [None]):
        if point is not None and point.share is not None:
            run.append(f"{_fmt(x)},{_fmt(y_of(point.share))}")
            continue
        if len(run) > 1:
            parts.append(f'<polyline points="{" ".join(run)}" class="line"/>')
        elif len(run) == 1 and lone_radius is not None:
            cx, cy = run[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="{lone_radius}" class="point"/>')
        run = []
    return parts
