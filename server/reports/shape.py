"""The monthly national report's shape: per unit, lines of counts as the national reporting asks.

- telephone: calls in scope (`calls`), contact the same day (`same_day`), `share`;
- assessment: completed first contacts (`completed`) by profession group (doctor, other licensed) and by
  form, counted with a wait of 0 days (`wait_0`), 0–3 days (`wait_0_3`) and 0–7 days (`wait_0_7`);
  `share` is the share within 3 days; the whole unit's line also counts the `excluded`;
- fixed_doctor: listed patients (`listed`), with a named fixed doctor (`named_doctor`), `share`.

Every count comes from the metric rules themselves: telephone and fixed doctor are the API's figures,
and the assessment lines sort the very cases the figure counts (`CaseLedger.completed`), so the
whole unit's line is the figure's denominator and numerator, which `unit_lines` checks.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from vardkoll.server.metrics.assessment import CompletedCase
from vardkoll.server.metrics.config import DEFINITION_VERSIONS
from vardkoll.server.metrics.figures import share_of

SECTIONS = ("telephone", "assessment", "fixed_doctor")
GROUPS = ("doctor", "other_licensed", "all")  # profession groups, then both together
FORMS = ("physical", "phone", "video", "chat", "letter", "home")  # care.assessed `form` (SPEC 3.1)
UNKNOWN_FORM = "unknown"  # the assessment's event is no longer in the archive (retention)
ALL = "all"
BANDS = {"wait_0": 0, "wait_0_3": 3, "wait_0_7": 7}  # a wait of at most this many days
# The count fields of each section and the (numerator, denominator) of its share.
COUNTS = {
    "telephone": ("calls", "same_day"),
    "assessment": ("completed", *BANDS, "excluded"),
    "fixed_doctor": ("listed", "named_doctor"),
}
SHARE_OF = {"telephone": ("same_day", "calls"), "assessment": ("wait_0_3", "completed"), "fixed_doctor": ("named_doctor", "listed")}
FIELDS = ("calls", "same_day", "completed", *BANDS, "excluded", "listed", "named_doctor", "share")

Line = dict[str, Any]


class ReportMismatch(RuntimeError):
    """The breakdown does not add up to the figure: a bug, never a report to publish."""


def profession_group(profession: str) -> str:
    return "doctor" if profession == "doctor" else "other_licensed"


def _line(unit: Mapping[str, Any], section: str, group: str = "", form: str = "", **counts: int) -> Line:
    numerator, denominator = SHARE_OF[section]
    share = share_of(counts[numerator], counts[denominator])
    return {**unit, "section": section, "group": group, "form": form, **counts, "share": share, "definition_version": DEFINITION_VERSIONS[section]}


def assessment_lines(unit: Mapping[str, Any], cases: Iterable[CompletedCase], form_of: Mapping[str, str], excluded: int) -> list[Line]:
    """`form_of`: case pseudonym → the form of its first assessment. Every (group, form) has a line, so
    reports have one shape month after month; the unknown form only when some case has it."""
    tally: Counter[tuple[str, str, str]] = Counter()
    for done in cases:
        group, form = profession_group(done.state.profession), form_of.get(done.case, UNKNOWN_FORM)
        for g in (group, ALL):
            for f in (form, ALL):
                tally[g, f, "completed"] += 1
                for band, limit in BANDS.items():
                    tally[g, f, band] += done.wait_days <= limit
    forms = (*FORMS, UNKNOWN_FORM) if tally[ALL, UNKNOWN_FORM, "completed"] else FORMS
    lines = []
    for group in GROUPS:
        for form in (*forms, ALL):
            counts = {name: tally[group, form, name] for name in ("completed", *BANDS)}
            if group == ALL and form == ALL:
                counts["excluded"] = excluded
            lines.append(_line(unit, "assessment", group, form, **counts))
    return lines


def unit_lines(
    unit: Mapping[str, Any],
    telephone: Mapping[str, Any],
    assessment: Mapping[str, Any],
    cases: list[CompletedCase],
    form_of: Mapping[str, str],
    fixed_doctor: Mapping[str, Any],
) -> list[Line]:
    """One unit's lines from its three figures (SPEC 2.5) and the cases behind the assessment figure."""
    lines = [_line(unit, "telephone", calls=telephone["denominator"], same_day=telephone["numerator"])]
    assessed = assessment_lines(unit, cases, form_of, assessment["details"]["excluded"])
    whole = assessed[-1]
    if (whole["completed"], whole["wait_0_3"]) != (assessment["denominator"], assessment["numerator"]):
        raise ReportMismatch(f"unit {unit['unit']}: the assessment breakdown does not add up to the figure")
    lines += assessed
    lines.append(_line(unit, "fixed_doctor", listed=fixed_doctor["denominator"], named_doctor=fixed_doctor["numerator"]))
    return lines


def cell_key(line: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return line["unit"], line["section"], line["group"], line["form"]
