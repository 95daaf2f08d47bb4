"""A table of replayed figures for people (the `demo` command)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _percent(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.1f} %"


def print_figures(document: dict[str, Any]) -> None:
    console = Console()
    results = document["results"]
    if not results:
        console.print("No events to show.")
        return
    table = Table(title=f"vardkoll: figures {results[0]['from']} – {results[0]['to']}")
    for column in ("unit", "metric", "numerator / denominator", "share", "target", "meets target"):
        table.add_column(column, justify="left" if column in ("unit", "metric") else "right", no_wrap=True)
    for figure in results:
        meets = {True: "[green]yes[/]", False: "[red]no[/]", None: "–"}[figure["meets_target"]]
        table.add_row(
            figure["unit"],
            figure["metric"],
            f"{figure['numerator']} / {figure['denominator']}",
            _percent(figure["share"]),
            _percent(figure["target"]) if figure["target"] is not None else "–",
            meets,
        )
    console.print(table)
    console.print(f"{len(document['rejected'])} lines rejected, {document['duplicates']} repeated events counted once.")
    console.print("Re-compute it yourself: vardkoll replay ARCHIVE.jsonl.gz --from DATE --to DATE")
