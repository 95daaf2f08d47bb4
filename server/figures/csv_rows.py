"""A figure list as CSV: one flat row per figure, the same numbers as the JSON (the API and Regionvy)."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable

COLUMNS = (
    "unit",
    "metric",
    "from",
    "to",
    "numerator",
    "denominator",
    "share",
    "target",
    "meets_target",
    "small_n",
    "definition_version",
    "last_event_at",
    "no_data",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flat_row(figure: dict[str, Any]) -> list[str]:
    data = figure.get("data", {})
    merged = {**figure, "small_n": figure["details"].get("small_n"), "last_event_at": data.get("last_event_at"), "no_data": data.get("no_data")}
    return [_cell(merged.get(column)) for column in COLUMNS]


def figures_csv(figures: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(flat_row(figure) for figure in figures)
    return out.getvalue()
