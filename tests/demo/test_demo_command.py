"""The README's first command: `vardkoll demo` runs the real edge and stops cleanly.

One run of the demo as a user starts it (its own process group, as a terminal's foreground job), with
four clinics, one of each kind of system: while the history streams in the figures grow, one clinic's
collector process is killed and comes back, every device reports a real outbox, clock and version
through the API and Installationsvy, the figures equal a replay of what the simulated systems meant
to convey, the commands the demo prints work as printed, and Ctrl-C leaves no process behind.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from support import free_port

METRICS = ("telephone", "assessment", "fixed_doctor", "continuity")
COMPARED = ("numerator", "denominator", "share", "meets_target", "details")


class Demo:
    def __init__(self, folder: Path, port: int) -> None:
        self.exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
        self.folder = folder
        self.process = subprocess.Popen(
            [self.exe, "demo", "--port", str(port), "--clinics", "4", "--folder", str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            assert self.process.poll() is None, f"the demo ended early:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout_s} s:\n{self.output}"
            time.sleep(0.2)

    def state(self) -> dict:
        return orjson.loads((self.folder / "demo.json").read_bytes())

    def get(self, path: str, **params) -> httpx.Response:
        state = self.state()
        return httpx.get(state["base_url"] + path, params=params, headers={"Authorization": f"Bearer {state['admin_token']}"}, timeout=30)


def _group_members(pgid: int) -> list[str]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            members.append(f"{entry.name}: {command}")
    return members


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _replay_printed(demo: Demo) -> dict[tuple[str, str], dict]:
    """Run the `vardkoll replay …` line the demo printed, as printed."""
    line = next(line for line in demo.lines if "vardkoll replay " in line)
    argv = shlex.split(line[line.index("vardkoll replay ") :])
    result = subprocess.run([demo.exe, *argv[1:]], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    document = orjson.loads(result.stdout)
    assert document["rejected"] == [], document["rejected"][:3]
    return {(f["unit"], f["metric"]): f for f in document["results"]}


def _api_figures(demo: Demo, state: dict) -> dict[tuple[str, str], dict]:
    figures = {}
    for clinic in state["clinics"]:
        for metric in METRICS:
            response = demo.get(
                f"/api/v1/units/{clinic['unit']}/compliance", metric=metric, **{"from": state["first_day"]}, to=state["today"], as_of=state["history_until"]
            )
            assert response.status_code == 200, response.text
            figures[(clinic["unit"], metric)] = response.json()
    return figures


def test_the_demo_runs_real_collectors_loses_nothing_when_one_is_killed_and_stops_on_ctrl_c(tmp_path, chromium):
    port = free_port()
    demo = Demo(tmp_path / "demo", port)
    pgid = demo.process.pid
    try:
        demo.wait_for("Press Ctrl-C", 120)
        state = demo.state()
        assert {(c["phone"], c["records"]) for c in state["clinics"]} == {
            ("asterisk", "fhir"),
            ("callback", "serial"),
            ("callback", "fhir"),
            ("asterisk", "serial"),
        }
        asterisk = next(c for c in state["clinics"] if c["phone"] == "asterisk" and c["records"] == "fhir")

        # While the history streams in, the figures grow; meanwhile the Asterisk clinic's collector is killed.
        region = {"metric": "telephone", "region": state["region"], "from": state["first_day"]}
        seen: list[int] = []
        killed_pid = None
        deadline = time.monotonic() + 150
        while demo.state()["history_complete_after_s"] is None:
            assert time.monotonic() < deadline, demo.output
            figures = demo.get("/api/v1/compliance", **region).json()  # no `to`: today, the server's default
            seen.append(sum(f["denominator"] for f in figures))
            if killed_pid is None and demo.get(f"/api/v1/units/{asterisk['unit']}/events", **{"from": state["first_day"], "to": state["first_day"]}).content:
                killed_pid = next(c["pid"] for c in demo.state()["clinics"] if c["unit"] == asterisk["unit"])
                os.kill(killed_pid, signal.SIGKILL)  # mid-stream: its outbox and checkpoints must carry it over
            time.sleep(0.5)
        assert killed_pid is not None, "history completed before the collector could be killed"
        assert len(set(seen)) >= 3 and seen == sorted(seen), f"figures should grow while the systems write: {seen}"
        restarted = next(c for c in demo.state()["clinics"] if c["unit"] == asterisk["unit"])
        assert restarted["restarts"] >= 1 and restarted["pid"] != killed_pid
        assert f"(pid {killed_pid}) stopped (signal SIGKILL)" in demo.output

        # Nothing lost, nothing twice: the API's figures equal a replay of what the systems meant to convey.
        state = demo.state()
        expected = _replay_printed(demo)
        actual = _api_figures(demo, state)
        assert set(expected) == set(actual)
        for key in expected:
            assert {k: expected[key][k] for k in COMPARED} == {k: actual[key][k] for k in COMPARED}, key
        assert all(actual[(c["unit"], "telephone")]["denominator"] > 100 for c in state["clinics"])
        assert all(actual[(c["unit"], "assessment")]["denominator"] > 10 for c in state["clinics"])

        # Every device reports its real outbox, clock and version, through the API ...
        from importlib.metadata import version

        for clinic in state["clinics"]:
            devices = demo.get(f"/api/v1/units/{clinic['unit']}/devices").json()
            assert [d["device"] for d in devices] == [clinic["device"]]
            beat = devices[0]["heartbeat"]
            assert devices[0]["status"] == "online" and beat["version"] == version("vardkoll")
            assert isinstance(beat["outbox"]["depth"], int) and beat["outbox"]["committed"] > 0
            assert beat["clock"]["state"] == "ok" and beat["config"]["state"] in ("local", "applied")
        # The remote config version pushed once the history was in: every collector applied it.
        deadline = time.monotonic() + 60
        for clinic in state["clinics"]:
            while (outcome := demo.get(f"/api/v1/units/{clinic['unit']}/devices/{clinic['device']}/config").json()["latest_outcome"]) != "applied":
                assert time.monotonic() < deadline, f"{clinic['device']}: remote config {outcome}\n{demo.output}"
                time.sleep(0.5)
        # ... and in Installationsvy, in Swedish
        context = chromium.new_context(locale="sv-SE", timezone_id="Europe/Stockholm")
        page = context.new_page()
        page.goto(f"{state['base_url']}/logga-in")
        page.fill("#token", state["admin_token"])
        page.click("button[type=submit]")
        for clinic in state["clinics"]:
            page.goto(f"{state['base_url']}/installation/{clinic['unit']}")
            cells = page.locator(f"tr[data-device='{clinic['device']}'] td").all_inner_texts()
            assert cells[0] == "ansluten", cells
            assert re.fullmatch(r"\d[\d  ]*(\näldsta .*)?", cells[2]), cells  # a depth, not "ingen data"
            assert cells[3] != "okänd" and cells[3].startswith(("synkad", "godtagbar")), cells
            assert cells[4] == version("vardkoll"), cells
            assert cells[5].startswith("demo-1 tillämpad") and "version demo-1 gäller" in cells[5], cells
        context.close()

        # The printed curl example works as printed.
        curl = next(line for line in demo.lines if "curl -H" in line)
        command = curl[curl.index("curl ") :]
        if shutil.which("curl"):
            printed = subprocess.run(command + " --fail --silent --show-error", shell=True, capture_output=True, timeout=30)
            assert printed.returncode == 0, printed.stderr
            assert len(orjson.loads(printed.stdout)) == 4
        else:
            url = re.search(r"'(http[^']+)'", command).group(1)
            assert demo.get(url.split(str(port), 1)[1].split("?")[0], **dict(httpx.URL(url).params)).status_code == 200
    finally:
        os.killpg(pgid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole foreground process group
        try:
            demo.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            raise
        demo._reader.join(5)
    assert demo.process.returncode == 0, demo.output
    assert demo.output.rstrip().endswith("stopped.") and "Traceback" not in demo.output, demo.output
    time.sleep(0.5)
    assert _group_members(pgid) == [], "processes left behind"
    assert not _listening(port)
    broker_port = int(re.search(r"broker on port (\d+)", demo.output).group(1))
    assert not _listening(broker_port), "the broker is still running"
    for log in (tmp_path / "demo" / "clinics").glob("*/collector/collector.log"):
        text = log.read_text()
        assert "Traceback" not in text and " ERROR " not in text, f"{log}:\n{text[-3000:]}"


def test_without_mosquitto_the_demo_runs_on_its_in_process_broker(tmp_path):
    """`--broker amqtt` is what a machine without the mosquitto binary gets: MQTT 3.1.1 for the server and the collectors."""
    port = free_port()
    folder = tmp_path / "demo"
    exe = shutil.which("vardkoll") or str(Path(sys.executable).with_name("vardkoll"))
    process = subprocess.Popen(
        [exe, "demo", "--port", str(port), "--clinics", "1", "--broker", "amqtt", "--folder", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        while not (folder / "demo.json").exists() or orjson.loads((folder / "demo.json").read_bytes())["history_complete_after_s"] is None:
            assert process.poll() is None and time.monotonic() < deadline, "history never completed over amqtt"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and "amqtt broker" in output and output.rstrip().endswith("stopped."), output
    assert "Traceback" not in output, output
    assert _group_members(process.pid) == []
