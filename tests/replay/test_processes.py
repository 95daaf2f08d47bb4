"""`vardkoll replay` ends every process it started: nothing of its process group outlives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from vardkoll.server.replay.blocks import BLOCK_BYTES, default_workers


def processes_in_group(group: int) -> list[str]:
    """`pid command` of every process (zombies included) whose process group is `group`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if int(fields[2]) == group:
            found.append(f"{entry.name} {fields[0]} {command or stat[:60]}")
    return found


@pytest.mark.skipif(default_workers() == 0, reason="one CPU: replay uses no worker processes here")
def test_replay_leaves_no_process_of_its_group_behind(tmp_path):
    archive = tmp_path / "two-blocks.jsonl"
    with archive.open("wb") as out:  # more than one block, so the worker processes are used
        n = 0
        while out.tell() <= BLOCK_BYTES + 4096:
            event = {
                "v": 1,
                "id": f"ev-{n}",
                "type": "call.offered",
                "unit": f"SE2321000016-VC{n % 4:02d}",
                "at": "2026-03-05T09:00:00+01:00",
                "call": f"callx{n:07d}",
            }
            out.write(orjson.dumps(event) + b"\n")
            n += 1
    vardkoll = str(Path(sys.executable).with_name("vardkoll"))
    replay = subprocess.Popen([vardkoll, "replay", str(archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    group = os.getpgid(replay.pid)
    out, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err.decode()
    assert len(orjson.loads(out)["results"]) == 16  # 4 units x 4 metrics: the replay did its work
    assert b"leaked" not in err and b"Traceback" not in err, err.decode()
    left = processes_in_group(group)
    try:
        assert not left, f"left behind in the replay's process group: {left}"
    finally:
        if left:
            os.killpg(group, 9)
