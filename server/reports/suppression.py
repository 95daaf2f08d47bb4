"""The public variant: no cell under 20, and nothing that gives one back.

1. Every count under 20 (`SMALL_N`), zero included, is hidden ("färre än 20").
2. A share is hidden when its numerator or its denominator is.
3. Sums the report itself states must not give a hidden count back. A unit's assessment lines add up:
   the forms to their group's line, the two profession groups to the "all" line. Where, in such a sum
   with its total shown, exactly one part is hidden, the smallest other shown part is hidden too
   (complementary suppression), until no sum has a lone hidden part.

Left as the national statistics publish them: the cumulative wait bands (0, 0–3, 0–7 days) beside the
number completed, and calls beside same-day contacts; their differences are not cells of the report.
No line sums across units, so units do not give each other away.
"""

from __future__ import annotations

from typing import Any, Iterable

from vardkoll.server.metrics.figures import SMALL_N

from .shape import ALL, BANDS, COUNTS, SHARE_OF, Line

HIDDEN = "färre än 20"
ADDITIVE = ("completed", *BANDS)  # the assessment counts that add up across forms and groups


def _sums(lines: list[Line]) -> Iterable[tuple[Line, list[Line]]]:
    """(total, parts) of every sum among one unit's assessment lines."""
    by_key = {(line["group"], line["form"]): line for line in lines}
    groups = sorted({g for g, _ in by_key if g != ALL})
    forms = sorted({f for _, f in by_key if f != ALL})
    for group in (*groups, ALL):
        yield by_key[group, ALL], [by_key[group, form] for form in forms]
    for form in (*forms, ALL):
        yield by_key[ALL, form], [by_key[group, form] for group in groups]


def _complement(lines: list[Line], hidden: dict[int, set[str]]) -> None:
    changed = True
    while changed:
        changed = False
        for total, parts in _sums(lines):
            for field in ADDITIVE:
                if field in hidden[id(total)]:
                    continue
                lone = [part for part in parts if field in hidden[id(part)]]
                shown = [part for part in parts if field not in hidden[id(part)]]
                if len(lone) == 1 and shown:
                    smallest = min(shown, key=lambda part: part[field])
                    hidden[id(smallest)].add(field)
                    changed = True


def public_lines(lines: list[Line]) -> list[Line]:
    """The public variant of a report's lines: hidden values are None, named in `suppressed`."""
    hidden: dict[int, set[str]] = {id(line): {f for f in COUNTS[line["section"]] if f in line and line[f] < SMALL_N} for line in lines}
    by_unit: dict[str, list[Line]] = {}
    for line in lines:
        if line["section"] == "assessment":
            by_unit.setdefault(line["unit"], []).append(line)
    for unit_lines in by_unit.values():
        _complement(unit_lines, hidden)
    result = []
    for line in lines:
        cells = hidden[id(line)]
        numerator, denominator = SHARE_OF[line["section"]]
        if numerator in cells or denominator in cells:
            cells.add("share")
        public: dict[str, Any] = {**line, **dict.fromkeys(cells)}
        public["suppressed"] = sorted(cells)
        result.append(public)
    return result
