"""Parsing in blocks and in worker processes gives exactly what one pass over the file gives."""

from __future__ import annotations

import io

import pytest

from vardkoll.server.replay import blocks as replay_blocks
from vardkoll.server.replay import replay_path

from conftest import FIXTURES


@pytest.fixture
def archive(tmp_path):
    """Every fixture file in one archive: bad lines, blank lines, repeats and id conflicts included."""
    path = tmp_path / "all.jsonl"
    path.write_bytes(b"".join(p.read_bytes() for p in sorted(FIXTURES.glob("*/*.jsonl"))) + b"no newline at the end")
    return path


@pytest.mark.parametrize("block_bytes", [7, 300, 5_000])
@pytest.mark.parametrize("ending", [b"", b"\n", b"\n\n"])
def test_blocks_cover_every_line_once_with_its_number(archive, block_bytes, ending):
    data = archive.read_bytes() + ending
    lines = data.split(b"\n")
    if ending:
        lines.pop()  # the last newline ends the last line; it does not start another
    seen = []
    for block, first in replay_blocks.read_blocks(io.BytesIO(data), block_bytes=block_bytes):
        for offset, line in enumerate(block.split(b"\n")):
            seen.append((first + offset, line))
    assert seen == list(enumerate(lines, start=1))


@pytest.mark.parametrize("workers", [0, 2])
def test_worker_processes_give_the_same_document_as_one_pass(archive, workers, monkeypatch):
    expected = replay_path(archive, workers=0)
    monkeypatch.setattr(replay_blocks, "BLOCK_BYTES", 700)
    assert len(list(replay_blocks.read_blocks(io.BytesIO(archive.read_bytes())))) > 10
    assert replay_path(archive, workers=workers) == expected
    assert expected["rejected"] and expected["duplicates"] and expected["results"]
    assert expected["rejected"][-1]["error"].startswith("not valid JSON")
