"""Hypothesis pieces for drafting call and case events (dicts for `validate_event`, ids added later)."""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import strategies as st

CALL_KINDS = ["call.offered", "call.answered", "call.callback_booked", "call.callback_done", "call.abandoned", "call.rejected"]
CASE_KINDS = ["care.contact", "care.assessed", "care.excluded", "care.cancelled"]


def call_and_case_fields(draw: Callable[[Any], Any], kind: str, calls: list[str], cases: list[str]) -> dict[str, Any]:
    """The fields a call or case event of `kind` needs besides v, type, unit and at."""
    fields: dict[str, Any] = {}
    if kind.startswith("call."):
        fields["call"] = draw(st.sampled_from(calls))
    if kind == "call.callback_done":
        fields["reached"] = draw(st.booleans())
    if kind == "call.rejected":
        fields["reason"] = "queue_full"
    if kind.startswith("care."):
        fields["case"] = draw(st.sampled_from(cases))
    if kind == "care.contact":
        fields.update(listed=draw(st.booleans()), channel="phone")
    if kind == "care.assessed":
        fields.update(profession=draw(st.sampled_from(["doctor", "nurse"])), form="phone")
    if kind == "care.excluded":
        fields["reason"] = "medical"
    return fields
