"""`vardkoll replay` reproduces every hand-worked scenario: figures, rejected line numbers, duplicates."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import scenario_files

SCENARIOS = scenario_files()


def run_replay(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
    return subprocess.run([exe, "replay", *args], input=stdin, capture_output=True, timeout=120)


def replay_args(expected: dict) -> list[str]:
    args = ["--from", expected["replay_args"]["from"], "--to", expected["replay_args"]["to"]]
    if "as_of" in expected["replay_args"]:
        args += ["--as-of", expected["replay_args"]["as_of"]]
    return args


def assert_matches(document: dict, expected: dict) -> None:
    assert document["results"] == expected["results"]
    assert [r["line"] for r in document["rejected"]] == [r["line"] for r in expected["rejected"]]
    assert document["duplicates"] == expected["duplicates"]
    for rejection in document["rejected"]:
        assert rejection["error"] and "\n" not in rejection["error"] and "Traceback" not in rejection["error"]


def test_there_are_scenarios_to_check():
    assert len(SCENARIOS) >= 19


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_replay_cli_reproduces_scenario(expected_path, load_scenario):
    events, scenario = load_scenario(expected_path)
    completed = run_replay(str(events), *replay_args(scenario))
    assert completed.returncode == 0, completed.stderr.decode()
    assert_matches(json.loads(completed.stdout), scenario["expected"])


def test_replay_reads_gzip_and_stdin(tmp_path, load_scenario):
    events, scenario = load_scenario(next(p for p in SCENARIOS if p.name.startswith("telephone-day")))
    packed = tmp_path / "archive.jsonl.gz"
    packed.write_bytes(gzip.compress(events.read_bytes()))
    for args, stdin in (([str(packed)], None), (["-"], events.read_bytes()), (["-"], packed.read_bytes())):
        completed = run_replay(*args, *replay_args(scenario), stdin=stdin)
        assert completed.returncode == 0, completed.stderr.decode()
        assert_matches(json.loads(completed.stdout), scenario["expected"])


def test_bad_lines_in_the_same_order_as_the_example_reasons(load_scenario):
    events, scenario = load_scenario(next(p for p in SCENARIOS if p.name.startswith("bad-input")))
    document = json.loads(run_replay(str(events), *replay_args(scenario)).stdout)
    reasons = {r["line"]: r["error"] for r in document["rejected"]}
    assert "JSON" in reasons[4]
    assert "offset" in reasons[5]
    assert "unknown type 'call.teleport'" in reasons[6]
    assert "'unit'" in reasons[7] and "HSA-id" in reasons[7]
    assert "personal identity number" in reasons[8] and "1212" not in reasons[8]
    assert "personal identity number" in reasons[9] and "2393" not in reasons[9]
    assert reasons[11] == "named_doctor exceeds listed"
    assert reasons[12] == "missing field 'listed'"
    assert reasons[14] == "event must be an object"


def test_without_a_period_the_events_dates_are_used(load_scenario):
    events, _ = load_scenario(next(p for p in SCENARIOS if p.name.startswith("dst")))
    document = json.loads(run_replay(str(events)).stdout)
    assert {(r["from"], r["to"]) for r in document["results"]} == {("2026-03-28", "2026-10-26")}


def test_garbage_and_binary_input_is_reported_never_fatal(tmp_path):
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(b"\x00\xff\xfe garbage\n" + b"[" * 10_000 + b"\n" + b'{"v": 1}\n' + b"x" * 70_000 + b"\n")
    completed = run_replay(str(path))
    assert completed.returncode == 0, completed.stderr.decode()
    document = json.loads(completed.stdout)
    assert [r["line"] for r in document["rejected"]] == [1, 2, 3, 4]
    assert document["results"] == []
    assert "larger than" in document["rejected"][3]["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "no such file"),
        (["{events}", "--from", "2026-02-30"], "--from must be a date"),
        (["{events}", "--from", "2026-03-02", "--to", "2026-03-01"], "before --from"),
        (["{events}", "--as-of", "2026-03-02T10:00:00"], "needs an offset"),
    ],
)
def test_bad_arguments_say_what_is_wrong_without_a_traceback(args, message, load_scenario):
    events, _ = load_scenario(SCENARIOS[0])
    completed = run_replay(*[a.format(events=events) for a in args])
    assert completed.returncode == 2
    assert message in completed.stderr.decode()
    assert "Traceback" not in completed.stderr.decode()


def test_a_one_sided_period_outside_the_events_is_refused_with_a_reason(load_scenario):
    events, _ = load_scenario(next(p for p in SCENARIOS if p.name.startswith("dst")))
    completed = run_replay(str(events), "--from", "2027-01-01")
    assert completed.returncode == 2
    assert "before it starts" in completed.stderr.decode() and "Traceback" not in completed.stderr.decode()


def test_unit_settings_change_targets_and_policy(tmp_path, load_scenario):
    events, _ = load_scenario(next(p for p in SCENARIOS if p.name.startswith("telephone-day")))
    settings = tmp_path / "units.json"
    settings.write_text(
        '{"default": {"targets": {"telephone": 0.5, "assessment": 0.8}},'
        ' "units": {"SE2321000016-VC01": {"targets": {"telephone": 0.4}, "unreached_callback_counts": false}}}'
    )
    document = json.loads(run_replay(str(events), "--from", "2026-03-02", "--to", "2026-03-02", "--units", str(settings)).stdout)
    by_metric = {r["metric"]: r for r in document["results"]}
    # c-cb-unreached no longer counts: 3 of 8 got contact the same day.
    assert (by_metric["telephone"]["numerator"], by_metric["telephone"]["target"]) == (3, 0.4)
    assert by_metric["assessment"]["target"] == 0.8  # from the default entry, not the built-in 0.9
    settings.write_text('{"units": {"VC01": {}}}')
    completed = run_replay(str(events), "--units", str(settings))
    assert completed.returncode == 2 and "not an HSA-id" in completed.stderr.decode()
