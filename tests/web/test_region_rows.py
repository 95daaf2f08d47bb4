"""Regionvy's rows are kept per unit (server/web/region_rows.py) and reused only while every object a
row was built from is the same object: a new figure, a new data block or a renamed unit builds the row
again, and another period or chosen metric has rows of its own."""

from __future__ import annotations

from datetime import date

import pytest

from vardkoll.server.figures.cache import ReadOnlyDict, frozen_figure
from vardkoll.server.metrics import METRICS, Period
from vardkoll.server.registry import UnitEntry
from vardkoll.server.storage.registry_tables import UnitRow
from vardkoll.server.web.region_rows import RegionRows
from vardkoll.server.web.trends import month_periods

END = date(2026, 3, 14)
PERIOD = Period(date(2026, 3, 1), END)
YEAR = Period(date(2026, 1, 1), date(2026, 3, 13))
MONTHS = month_periods(END)
SETS = len(METRICS) + len(MONTHS) + 1  # the table's metrics, the chosen metric's months and its year


def entry(unit: str, name: str) -> UnitEntry:
    return UnitEntry.of(UnitRow(unit=unit, name=name, region="Region Uppsala"))


def kept_figure(unit: str, numerator: int, denominator: int = 10) -> dict:
    return frozen_figure(
        {
            "unit": unit,
            "share": numerator / denominator,
            "numerator": numerator,
            "denominator": denominator,
            "meets_target": numerator / denominator >= 0.9,
            "target": 0.9,
            "details": {"small_n": True},
        }
    )


def block(no_data: bool = False) -> dict:
    return ReadOnlyDict({"no_data": no_data, "last_event_at": None})


UNITS = [entry("SE2321000032-VC01", "Vårdcentralen Årsta"), entry("SE2321000032-VC02", "Vårdcentralen Östhammar")]


def kept_sets(numerators: tuple[int, int]) -> list[list[dict]]:
    """Every set of the page, each unit's figure a new kept object."""
    return [[kept_figure(u.unit, n) for u, n in zip(UNITS, numerators)] for _ in range(SETS)]


def test_a_row_built_from_the_same_objects_is_the_row_built_before():
    rows, sets, blocks = RegionRows(), kept_sets((8, 9)), [block(), block()]
    first = rows.rows(UNITS, sets, blocks, PERIOD, "telephone", MONTHS, YEAR)
    again = rows.rows(UNITS, sets, blocks, PERIOD, "telephone", MONTHS, YEAR)
    assert [a is b for a, b in zip(first, again)] == [True, True]
    assert (rows.built, rows.reused) == (2, 2)


def test_a_new_figure_object_builds_that_units_row_again_and_shows_it():
    rows, sets, blocks = RegionRows(), kept_sets((8, 9)), [block(), block()]
    first = rows.rows(UNITS, sets, blocks, PERIOD, "telephone", MONTHS, YEAR)
    # A new event for VC02: its figure of one month only is a new object (7 of 10 now).
    changed = [list(figures) for figures in sets]
    changed[len(METRICS) + 5][1] = kept_figure(UNITS[1].unit, 7)
    again = rows.rows(UNITS, changed, blocks, PERIOD, "telephone", MONTHS, YEAR)
    assert again[0] is first[0]
    assert again[1] is not first[1]
    assert again[1].months[5].share == 0.7 and first[1].months[5].share == 0.9


def test_an_equal_but_new_figure_object_also_builds_the_row_again():
    # Identity, not equality: cheap to compare, and never wrong (a row built again from equal figures is equal).
    rows, blocks = RegionRows(), [block(), block()]
    first = rows.rows(UNITS, kept_sets((8, 9)), blocks, PERIOD, "telephone", MONTHS, YEAR)
    again = rows.rows(UNITS, kept_sets((8, 9)), blocks, PERIOD, "telephone", MONTHS, YEAR)
    assert again[0] is not first[0] and again[0] == first[0]


def test_a_new_data_block_or_a_renamed_unit_builds_the_row_again():
    rows, sets = RegionRows(), kept_sets((8, 9))
    first = rows.rows(UNITS, sets, [block(), block()], PERIOD, "telephone", MONTHS, YEAR)
    silent = rows.rows(UNITS, sets, [first[0].figures["telephone"]["data"], block(no_data=True)], PERIOD, "telephone", MONTHS, YEAR)
    assert silent[0] is first[0]
    assert silent[1].figures["telephone"]["data"]["no_data"] is True
    renamed = [UNITS[0], entry(UNITS[1].unit, "Vårdcentralen Öregrund")]
    again = rows.rows(renamed, sets, [first[0].figures["telephone"]["data"], silent[1].figures["telephone"]["data"]], PERIOD, "telephone", MONTHS, YEAR)
    assert again[0] is first[0]
    assert again[1].unit.name == "Vårdcentralen Öregrund"


def test_another_period_or_chosen_metric_has_rows_of_its_own():
    rows, sets, blocks = RegionRows(), kept_sets((8, 9)), [block(), block()]
    telephone = rows.rows(UNITS, sets, blocks, PERIOD, "telephone", MONTHS, YEAR)
    assessment = rows.rows(UNITS, sets, blocks, PERIOD, "assessment", MONTHS, YEAR)
    earlier = Period(date(2026, 3, 1), date(2026, 3, 13))
    shorter = rows.rows(UNITS, sets, blocks, earlier, "telephone", month_periods(earlier.end), YEAR)
    assert all(a is not b for a, b in zip(telephone, assessment))
    assert all(a is not b for a, b in zip(telephone, shorter))
    assert rows.reused == 0


def test_a_rows_figures_carry_the_units_data_block_and_refuse_changes():
    rows = RegionRows()
    row = rows.rows(UNITS, kept_sets((8, 9)), [block(), block(no_data=True)], PERIOD, "telephone", MONTHS, YEAR)[1]
    assert row.figures["assessment"]["data"]["no_data"] is True and row.year["data"]["no_data"] is True
    assert [p.share for p in row.months] == [0.9] * len(MONTHS)
    with pytest.raises(TypeError):  # every request that finds the row shares it
        row.figures["telephone"]["share"] = 1.0


def test_the_rows_kept_are_bounded_and_the_latest_used_stay():
    rows, sets, blocks = RegionRows(max_rows=2), kept_sets((8, 9)), [block(), block()]
    rows.rows(UNITS, sets, blocks, PERIOD, "telephone", MONTHS, YEAR)
    rows.rows(UNITS[:1], [s[:1] for s in sets], blocks[:1], PERIOD, "assessment", MONTHS, YEAR)  # pushes out VC01's telephone row, the oldest
    assert (rows.built, rows.reused) == (3, 0)
    rows.rows(UNITS[1:], [s[1:] for s in sets], blocks[1:], PERIOD, "telephone", MONTHS, YEAR)  # VC02's stayed
    assert (rows.built, rows.reused) == (3, 1)
    rows.rows(UNITS[:1], [s[:1] for s in sets], blocks[:1], PERIOD, "telephone", MONTHS, YEAR)  # VC01's is built again
    assert (rows.built, rows.reused) == (4, 1)
