"""How the docs-commands test reads a document: commands, optional flags, output blocks, comparisons."""

from __future__ import annotations

import pytest

from .doc_blocks import blocks, matches_json, matches_text, shell_commands


def test_usage_syntax_runs_with_its_optional_flags_and_continuations_join():
    body = "# a comment\n./dev vardkoll replay EVENTS.jsonl [--from 2026-03-01] [--to DATE]\ncurl -s \\\n  -d a=1\n\n"
    assert shell_commands(body) == ["./dev vardkoll replay EVENTS.jsonl --from 2026-03-01 --to DATE", "curl -s    -d a=1"]


def test_an_output_block_belongs_to_the_command_block_right_above_it(tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text('```sh\necho \'{"a": 1}\'\n```\n```json output\n{"a": 1}\n```\n\n```json\n{}\n```\n')
    found = blocks(doc)
    assert [b.language for b in found] == ["sh", "json"]
    assert found[0].output is not None and found[0].output.body == '{"a": 1}\n'
    doc.write_text("```json\n{}\n```\n```text output\nx\n```\n")
    with pytest.raises(AssertionError, match="must directly follow"):
        blocks(doc)


def test_shown_json_is_a_subset_and_an_ellipsis_is_any_value():
    actual = {"unit": "VC01", "share": 0.5, "data": {"no_data": False, "last_received_at": "2026-12-04T18:00:00+00:00"}, "extra": 1}
    assert matches_json({"share": 0.5, "data": {"last_received_at": "…"}}, actual) == []
    assert matches_json({"share": 0.4}, actual) == [".share: the docs say 0.4, the command gave 0.5"]
    assert matches_json(["…", {"a": 1}], [{"b": 2}]) != []  # a list must have as many items as shown


def test_shown_text_matches_line_by_line_with_ellipses():
    assert matches_text("unit,share\nVC01,…\n", "unit,share\nVC01,0.5\n")
    assert not matches_text("unit,share\nVC01,0.4\n", "unit,share\nVC01,0.5\n")
