"""The definitions the pages show and docs/metrics.md cannot drift apart: section 8 of the docs is the
text `vardkoll.server.metrics.definitions` generates, and the numbers in both come from the code."""

from __future__ import annotations

import re
from pathlib import Path

from vardkoll.server.metrics import DEFAULT_TARGETS, METRICS
from vardkoll.server.metrics.definitions import BEGIN, DEFINITIONS, END, markdown

METRICS_MD = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_metrics_section_8_is_the_generated_definitions():
    text = METRICS_MD.read_text(encoding="utf-8")
    section = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert section == markdown(), (
        "docs/metrics.md section 8 differs from server/metrics/definitions.py: "
        "run .venv/bin/python -m vardkoll.server.metrics.definitions --write docs/metrics.md"
    )


def test_every_metric_has_a_definition_and_the_docs_table_states_the_codes_targets():
    assert set(DEFINITIONS) == set(METRICS)
    overview = METRICS_MD.read_text(encoding="utf-8").split("## 1.")[0]  # the table at the top
    table = dict(re.findall(r"^\| `(\w+)` \|.*\| (\S+) \|$", overview, re.MULTILINE))
    assert set(table) == set(METRICS)
    for metric, written in table.items():
        target = DEFAULT_TARGETS[metric]
        assert written == ("none" if target is None else f"{target:.2f}"), metric
