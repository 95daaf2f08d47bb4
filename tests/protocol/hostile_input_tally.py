"""Tries / refused / accepted / exception per hostile-input class: the table in docs/reliability.md.

    .venv/bin/python tests/protocol/hostile_input_tally.py 1000     # examples per class

Uses the strategies of test_hostile_input.py; pytest does not collect it (the tests assert the same classes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from support.number_variants import DIGIT_FORMS, ISSUE_FORMS, digit_form, published_numbers, variants, written  # noqa: E402
from test_hostile_input import check_digit, dumps, heartbeat, json_values, near_events, offered  # noqa: E402

from vardkoll.protocol.batches import BatchRejected, parse_batch  # noqa: E402
from vardkoll.protocol.heartbeat import StatusRefused, read_status  # noqa: E402
from vardkoll.protocol.validation import EventRejected, parse_event_line, validate_event  # noqa: E402

PN_REASON = "contains a personal identity number"


def tally(name: str, strategy: st.SearchStrategy[Any], refused: Callable[[Any], bool], examples: int) -> tuple[str, dict[str, int]]:
    counts = {"tries": 0, "refused": 0, "accepted": 0, "exception": 0}

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        counts["tries"] += 1
        try:
            counts["refused" if refused(value) else "accepted"] += 1
        except Exception:  # noqa: BLE001 - counted: the class's whole point
            counts["exception"] += 1

    run()
    return name, counts


def event_refused(text: str) -> bool:
    """Refused for a personal number on the raw path, the same as UTF-8 and as \\u-escaped JSON."""
    verdicts = []
    for raw in (json.dumps(offered(queue=text), ensure_ascii=False).encode(), json.dumps(offered(queue=text)).encode()):
        try:
            parse_event_line(raw)
            verdicts.append(False)
        except EventRejected as exc:
            verdicts.append(exc.reason.startswith(PN_REASON))
    assert verdicts[0] == verdicts[1]
    return verdicts[0]


def rejected(attempt: Callable[[], Any]) -> bool:
    try:
        attempt()
    except (EventRejected, BatchRejected, StatusRefused):
        return True
    return False


def batch_refused(events: list[Any]) -> bool:
    document = {"device": "dev-1", "events": events}
    try:
        _, items = parse_batch(dumps(document) or json.dumps(document).encode(), 100)
    except BatchRejected:
        return True
    return any(isinstance(item, EventRejected) for item in items)


@st.composite
def inside_a_longer_run(draw: st.DrawFn) -> str:
    text = draw(written(draw(published_numbers())))
    extra = draw(digit_form(draw(st.sampled_from("0123456789"))))
    return extra + text if draw(st.booleans()) else text + extra


@st.composite
def invalid_dates(draw: st.DrawFn) -> str:
    nine = draw(st.sampled_from(["121312", "120012", "121232", "120230", "121200"])) + "121"
    digits = nine + check_digit(nine)
    return draw(written("19" + digits if draw(st.booleans()) else digits))


def main(examples: int) -> None:
    scripts = list(zip(*(DIGIT_FORMS[d] for d in "0123456789")))
    one_script = st.sampled_from(scripts).map(lambda forms: "".join(forms[int(d)] for d in "121212") + "-" + "".join(forms[int(d)] for d in "1212"))
    bad_check = st.tuples(published_numbers(), st.integers(1, 9)).flatmap(lambda t: written(t[0][:-1] + str((int(t[0][-1]) + t[1]) % 10)))
    statuses = st.one_of(json_values, st.builds(lambda extra: heartbeat() | extra, st.dictionaries(st.sampled_from(list(heartbeat())), json_values)))
    hostile_statuses = variants().map(
        lambda t: heartbeat(note=t) if len(t) % 2 else heartbeat(config={"state": "refused", "rejected": {"version": "2", "reason": t}})
    )
    rows = [
        tally("forms issue 12 found stored (fixed list)", st.sampled_from(ISSUE_FORMS), event_refused, len(ISSUE_FORMS) * 4),
        tally(f"one script for all ten digits ({len(scripts)} digit sets)", one_script, event_refused, len(scripts) * 3),
        tally("Unicode variants", variants(), event_refused, examples),
        tally("not a number: inside a longer digit run", inside_a_longer_run(), event_refused, examples),
        tally("not a number: another check digit", bad_check, event_refused, examples),
        tally("not a number: century 12", written("121212121212"), event_refused, examples),
        tally("not a number: invalid date, right check digit", invalid_dates(), event_refused, examples),
        tally("random JSON as an event", st.one_of(json_values, near_events), lambda v: rejected(lambda: validate_event(v)), examples),
        tally("random JSON in a batch", st.lists(st.one_of(json_values, near_events), max_size=6), batch_refused, examples),
        tally("random bytes as an event line", st.binary(max_size=200), lambda raw: rejected(lambda: parse_event_line(raw)), examples),
        tally("random JSON as a status", statuses, lambda v: rejected(lambda: read_status(dumps(v) or json.dumps(v).encode())), examples),
        tally("a status with a variant", hostile_statuses, lambda v: rejected(lambda: read_status(json.dumps(v, ensure_ascii=False).encode())), examples),
    ]
    print("| class | tries | refused | accepted | exception |\n|---|---|---|---|---|")
    for name, counts in rows:
        print(f"| {name} | {counts['tries']} | {counts['refused']} | {counts['accepted']} | {counts['exception']} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
