"""A figure list as a CSV download (`format=csv`)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Response

from ..figures.csv_rows import figures_csv
from .figure_query import FigureQuery


def csv_response(figures: list[dict[str, Any]], query: FigureQuery, label: str) -> Response:
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", label)  # a header is latin-1 and the name must survive any file system
    filename = f"vardkoll-{label}-{query.metric}-{query.period.start}-{query.period.end}.csv"
    return Response(
        figures_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
