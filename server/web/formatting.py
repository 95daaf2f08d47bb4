"""Swedish (sv-SE) text for numbers, shares, dates and times, as the dashboard shows them.

Pure functions, also registered as Jinja2 filters. A missing value is never shown as a number:
`percent(None)` is "ingen data", so silence cannot look like a result.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

NBSP = "\u00a0"
MONTHS = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")
NO_DATA = "ingen data"


def percent(share: float | None, decimals: int = 1) -> str:
    """0.9042 → "90,4 %" (decimal comma, non-breaking space before the sign); None → "ingen data"."""
    if share is None:
        return NO_DATA
    value = (Decimal(str(share)) * 100).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return f"{value}".replace(".", ",") + f"{NBSP}%"


def number(value: int | float | None, decimals: int = 0) -> str:
    """12345 → "12 345"; 0.8123 with decimals=2 → "0,81"; None → "–"."""
    if value is None:
        return "–"
    quantized = Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(quantized):f}".partition(".")
    groups = []
    while len(whole) > 3:
        whole, groups = whole[:-3], [whole[-3:], *groups]
    text = NBSP.join([whole, *groups]) + ("," + fraction if fraction else "")
    return ("−" if quantized < 0 else "") + text


def day(value: date | str | None) -> str:
    """2026-11-23 → "23 nov 2026"."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def period(start: date | str, end: date | str) -> str:
    """One day: "23 nov 2026"; one month: "1–23 nov 2026"; otherwise "30 nov 2026 – 2 dec 2026"."""
    start = date.fromisoformat(start) if isinstance(start, str) else start
    end = date.fromisoformat(end) if isinstance(end, str) else end
    if start == end:
        return day(start)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{day(end)}"
    return f"{day(start)} – {day(end)}"


def moment(value: datetime | str | None, tz: ZoneInfo | str = "Europe/Stockholm") -> str:
    """An instant in local time: "23 nov 2026 kl. 14:05"; None → "ingen data"."""
    if value is None:
        return NO_DATA
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    local = value.astimezone(zone)
    return f"{day(local.date())} kl. {local:%H:%M}"


def instant(value: datetime | str) -> datetime:
    """An ISO 8601 time (as the API writes it) as an aware datetime, to compare with another."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


FILTERS = {"percent": percent, "number": number, "day": day, "period": period, "moment": moment, "instant": instant}
