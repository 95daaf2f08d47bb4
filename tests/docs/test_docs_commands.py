"""Every command shown in README.md and docs/*.md works as printed.

Each document's shell and Python blocks run in order (doc_blocks.py says how blocks are read) in a
scratch folder that links to the repository, against a fresh server on SQLite and a real Mosquitto,
with the settings a reader would have (`VARDKOLL_*`, `TOKEN`) and `vardkoll` on the PATH. Placeholders
that are plainly placeholders (`EVENTS.jsonl`, `DATE`, the example server address) are replaced by a
fixture or the test server; `sudo -u vardkoll-collector` is dropped (the test is that user). A command
that cannot run here is in NOT_RUN with its reason, or says so in the docs with a visible comment at
its end: `# not run by the docs test: <reason>`. New documents are picked up by the glob.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import httpx
import orjson
import pytest
import uvicorn

from support import free_port
from vardkoll.collector.pseudonyms import load_or_create_secret
from vardkoll.demo.broker import wait_for_port
from vardkoll.server.app import create_app
from vardkoll.server.auth import Role, issue_token
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import DeviceRow, UnitRow

from .doc_blocks import API_ADDRESS, RUNNABLE, SHOWN_ONLY, Block, blocks, looks_like_a_command, matches_json, matches_text

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCENARIOS = ROOT / "tests" / "fixtures" / "scenarios"
ADMIN_TOKEN = "docs-admin-token-" + "x" * 16
EXAMPLE_SERVER = "https://vardkoll.example.se"

# Commands that cannot run in a test, by how they start, each with the reason. Keep it short and true.
NOT_RUN = {
    "./dev demo": "runs until Ctrl-C on port 8000; tests/demo/test_demo_command.py runs `vardkoll demo`",
    "./dev test": "the test suite itself",
    "./dev screenshots": "rewrites docs/screenshots/ (tests/web/test_browser.py takes the same screenshots to a temporary folder)",
    "./dev bench": "benchmarks run for minutes; docs/benchmarks.md records what they printed",
    ".venv/bin/python bench/": "benchmarks run for minutes; docs/benchmarks.md records what they printed",
    ".venv/bin/python -m vardkoll.simulation --events 1000000": "the benchmark's million-event file (docs/benchmarks.md)",
    "time .venv/bin/vardkoll replay /tmp/events.jsonl": "replays the benchmark's million-event file (docs/benchmarks.md)",
    "vardkoll collector enroll": "writes /etc/vardkoll-collector and /var/lib/vardkoll-collector; tests/collector_agent/test_enrollment_client.py enrolls against a real server",
    "mosquitto_pub -h mqtt.vardkoll.example.se": "needs the production broker's operator account and CA",
    "sudo timedatectl": "changes the test machine's clock settings; `collector doctor` checks the clock",
    "tar -xzf vardkoll-collector-": "the offline bundle for the Pi (docs/collector.md, installing on a Raspberry Pi)",
    "sudo vardkoll-collector-": "installs the offline bundle system-wide (docs/collector.md, installing on a Raspberry Pi)",
    "sudo systemctl": "no systemd in the test container; deploy/collector/ holds the units",
    # Commands of other branches' documents, listed ahead of their merge:
    "vardkoll demo": "runs until Ctrl-C on port 8000 (docs/demo.md); tests/demo/ run it",
    "vardkoll replay <folder>/": "the folder a running demo writes (docs/demo.md)",
    "./dev package": "builds the offline bundle for the Pi (minutes, needs the package index); tests/edge_install/ build one",
    "./dev sign-update": "needs a built bundle and the release signing key; tests/edge_install/ sign one",
    "VARDKOLL_BACKUP_DATABASE_URL=": "the production database; tests/production/test_restore_drill.py backs up and restores a throwaway one",
    "VARDKOLL_RESTORE_DATABASE_URL=": "the production database; tests/production/test_restore_drill.py backs up and restores a throwaway one",
    "vardkoll admin devices push-config SE2321000016-15SF vc-norrby-pi-01 dist/": "pushes a signed software update built by ./dev package; tests/edge_install/test_updates.py push one",
    ".venv/bin/python -m pytest": "part of the test suite, which runs it already",
    ".venv/bin/python tests/protocol/hostile_input_tally.py": "minutes at 1 000 examples a class; tests/protocol/test_hostile_input.py runs the same strategies",
    "./dev vardkoll collector lookup": "answers only for a pseudonym this collector's connectors saw; tests/collector_agent/test_lookup.py runs the command on a real map",
    "vardkoll collector lookup": "answers only for a pseudonym this collector's connectors saw; tests/collector_agent/test_lookup.py runs the command on a real map",
    "vardkoll bridge run": "runs until stopped and needs the serial device (tests/firmware_bridge/ drive it through a pseudo-terminal)",
}
MARKED_NOT_RUN = "# not run by the docs test:"
# Commands that run until stopped: started as printed, they must get ready (the server answers its health
# check, the collector says it connected) and stop cleanly on SIGTERM.
RUNS_UNTIL_STOPPED: dict[str, Callable[[int], Callable[[str], bool]]] = {
    "./dev vardkoll server": lambda port: answers_health(port),
    "./dev vardkoll collector run": lambda port: lambda output: "connected to" in output,
}


def placeholders(work: Path, base_url: str, port: int) -> list[tuple[str, str]]:
    return [
        ("sudo -u vardkoll-collector ", ""),
        (EXAMPLE_SERVER, base_url),
        ("EVENTS.jsonl", str(SCENARIOS / "telephone-day.jsonl")),
        ("replay out.jsonl", f"replay {SCENARIOS / 'telephone-day.jsonl'}"),  # "what your collector would send"
        ("--from DATE", "--from 2026-03-02"),
        ("--to DATE", "--to 2026-03-02"),
        ("--as-of TIME", "--as-of 2026-03-02T12:00:00+01:00"),
        ("--units FILE", "--units units.json"),
        ("--host H", "--host 127.0.0.1"),
        ("--port P", f"--port {port}"),
        ("/etc/vardkoll-collector/collector.toml", str(work / "collector.toml")),
        ("/media/usb/", f"{work}/"),
    ]


# -- the world each document's commands meet ------------------------------------------------------------


def clinic_with_a_collector(services: Services) -> None:
    """The unit and device docs/collector.md's examples name (README.md adds its own)."""
    with services.sessions.begin() as session:
        session.add(UnitRow(unit="SE2321000016-15SF", name="Vårdcentralen Norrby", region="Region Demo"))
        session.add(DeviceRow(unit="SE2321000016-15SF", device="vc-norrby-pi-01", registered_at=datetime.now(timezone.utc)))


def region_with_the_scenarios(services: Services) -> tuple[dict[str, str], list[dict]]:
    """docs/api-guide.md's region: two more clinics holding the hand-worked scenarios of docs/metrics.md,
    and the analyst's token the guide's examples use (VARDKOLL_TOKEN)."""
    with services.sessions.begin() as session:
        session.add(UnitRow(unit="SE2321000016-VC01", name="Vårdcentralen Årsta", region="Region Demo"))
        session.add(UnitRow(unit="SE2321000016-VC02", name="Vårdcentralen Söderby", region="Region Demo"))
        _, analyst = issue_token(session, "api-guide", Role.region_analyst, "Region Demo", None)
    events = [
        orjson.loads(line)
        for name in ("telephone-day", "assessment-week", "fixed-doctor-month", "dst")
        for line in (SCENARIOS / f"{name}.jsonl").read_bytes().splitlines()
        if line.strip()
    ]
    return {"VARDKOLL_TOKEN": analyst}, events


WORLDS: dict[str, Callable[[Services], tuple[dict[str, str], list[dict]]]] = {"api-guide.md": region_with_the_scenarios}


@pytest.fixture
def server(tmp_path, mosquitto) -> Iterator[Callable[[str], tuple[str, dict[str, str]]]]:
    """Start the server for a document: (its address, the environment a reader of it has)."""
    running: list[tuple[uvicorn.Server, threading.Thread, Services]] = []

    def start(doc: str) -> tuple[str, dict[str, str]]:
        database = f"sqlite:///{tmp_path / 'docs.db'}"
        settings = ServerSettings(database_url=database, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, dev=False)
        services = build_services(settings, apply_migrations=True)
        clinic_with_a_collector(services)
        extra, events = WORLDS.get(doc, lambda s: ({}, []))(services)
        port = free_port()
        uv = uvicorn.Server(uvicorn.Config(create_app(settings, services, background=False), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        wait_for_port(port, 30)
        running.append((uv, thread, services))
        base = f"http://127.0.0.1:{port}"
        if events:
            posted = httpx.post(f"{base}/api/v1/events", content=orjson.dumps(events), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
            assert posted.status_code == 200 and not posted.json()["rejected"], posted.text
        env = {
            "VARDKOLL_DATABASE_URL": database,
            "VARDKOLL_MQTT_URL": mosquitto.url,
            "VARDKOLL_ADMIN_TOKEN": ADMIN_TOKEN,
            "TOKEN": ADMIN_TOKEN,
            "VARDKOLL_URL": base,
            **extra,
        }
        return base, env

    yield start
    for uv, thread, services in running:
        uv.should_exit = True
        thread.join(15)
        services.engine.dispose()


def scratch_folder(work: Path, mqtt_url: str) -> None:
    """The repository as links (so `./dev` and relative paths work, and what commands write stays here),
    and the files the docs' commands name."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "vardkoll.db"):
            (work / entry.name).symlink_to(entry)
    metrics = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    example = metrics[metrics.index("Example (`units.json`):") :]
    (work / "units.json").write_text(example[example.index("```json") + 7 : example.index("```", example.index("```json") + 7)])
    for name in ("sections.toml", "throttle.toml"):
        (work / name).write_text("[publisher]\nmax_events_per_s = 100\n")
    state = work / "state"
    state.mkdir()
    load_or_create_secret(state / "pseudonym.key")  # a device in service has its pseudonym secret
    (work / "exports").mkdir()
    (work / "collector.toml").write_text(
        'unit = "SE2321000016-15SF"\ndevice = "vc-norrby-pi-01"\n'
        f'[mqtt]\nurl = "{mqtt_url}"\nusername = "SE2321000016-15SF/vc-norrby-pi-01"\npassword = "docs-test"\n'
        f'[outbox]\npath = "{state / "outbox.db"}"\n[pseudonyms]\nsecret_file = "{state / "pseudonym.key"}"\n'
        f'[[connectors]]\ntype = "callback_csv"\nfolder = "{work / "exports"}"\n'
    )


def run(command: str, work: Path, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=work, env=env, input=stdin, capture_output=True, text=True, timeout=180)


def run_at_a_terminal(command: str, work: Path, env: dict[str, str], answers: list[str]) -> subprocess.CompletedProcess[str]:
    """`command` with a pseudo-terminal as its terminal, answering each prompt (ending in ": ") as a person
    would; an answer typed before its prompt would be flushed when the prompt turns echo off."""
    terminal, device = pty.openpty()
    process = subprocess.Popen(["bash", "-c", command], cwd=work, env=env, stdin=device, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    os.close(device)
    out, err, screen, pending = b"", b"", b"", list(answers)
    deadline = time.monotonic() + 180
    try:
        while process.poll() is None and time.monotonic() < deadline:
            for source in select.select([terminal, process.stdout, process.stderr], [], [], 0.5)[0]:
                try:
                    chunk = os.read(source if isinstance(source, int) else source.fileno(), 65536)
                except OSError:  # the terminal closes with the process
                    continue
                if source is terminal:
                    screen += chunk
                    if pending and screen.endswith(b": "):  # a prompt waits for its answer
                        os.write(terminal, pending.pop(0).encode() + b"\n")
                        screen = b""
                elif source is process.stdout:
                    out += chunk
                else:
                    err += chunk
        if process.poll() is None:
            process.kill()
        rest_out, rest_err = process.communicate(timeout=30)
    finally:
        os.close(terminal)
    return subprocess.CompletedProcess(
        command, process.returncode, (out + rest_out).decode(errors="replace"), (err + rest_err + screen).decode(errors="replace")
    )


def runs_until_stopped(command: str, work: Path, env: dict[str, str], ready: Callable[[str], bool]) -> str | None:
    """None when the command gets ready (`ready(output so far)`) within 60 s and stops cleanly on SIGTERM,
    as systemd or Ctrl-C would stop it; else what went wrong and what it said."""
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    assert process.stdout is not None
    said, problem = b"", None
    deadline = time.monotonic() + 60
    try:
        while not ready(said.decode(errors="replace")):
            if process.poll() is not None or time.monotonic() > deadline:
                problem = f"it quit (exit {process.returncode})" if process.poll() is not None else "not ready within 60 s"
                break
            if select.select([process.stdout], [], [], 0.2)[0]:
                said += os.read(process.stdout.fileno(), 65536)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                problem = problem or "it did not stop within 20 s of SIGTERM"
    if problem is None and process.returncode not in (0, -signal.SIGTERM):
        problem = f"it stopped with exit {process.returncode} on SIGTERM"
    return None if problem is None else f"{problem}: {(said + process.stdout.read()).decode(errors='replace')[-2000:]}"


def answers_health(port: int) -> Callable[[str], bool]:
    def ready(_: str) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


PASSPHRASE_COMMANDS = ("collector export-secret", "collector import-secret")
PASSPHRASE = "korrekt häst batteri häftklammer"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_command_in_the_document_works_as_printed(document, server, tmp_path, mosquitto):
    found = blocks(document)
    unlabeled = [b.where for b in found if not b.language and looks_like_a_command(b.body)]
    assert not unlabeled, f"commands in blocks without a language (mark them ```sh, or ```text if they are not run): {unlabeled}"
    runnable = [b for b in found if b.language in RUNNABLE]
    if not runnable:
        return
    # `./dev` sets up .venv when pyproject.toml is newer than its stamp: do that here, in the repository,
    # never from the scratch folder (pip would point the environment at the scratch folder).
    subprocess.run([str(ROOT / "dev"), "setup"], check=True, capture_output=True, timeout=600)
    work = tmp_path / "work"
    work.mkdir()
    scratch_folder(work, mosquitto.url)
    base, reader_env = server(document.name)
    port = free_port()
    env = {**os.environ, **reader_env, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    env.pop("VARDKOLL_SCREENSHOTS", None)
    substitutions = placeholders(work, base, port)
    requested: list[str] = []
    failures: list[str] = []
    for block in runnable:
        stdout = ""
        if block.language == "python":
            done = run(f"{ROOT / '.venv' / 'bin' / 'python'} -", work, env, stdin=block.body)
            requested += API_ADDRESS.findall(block.body)
            if done.returncode != 0:
                failures.append(f"{block.where} (python): exit {done.returncode}\n{done.stderr[-2000:]}")
            stdout = done.stdout
        for printed in block.commands:
            command = printed
            for placeholder, value in substitutions:
                command = command.replace(placeholder, value)
            if any(command.startswith(prefix) or printed.startswith(prefix) for prefix in NOT_RUN):
                continue
            if MARKED_NOT_RUN in printed:
                reason = printed.split(MARKED_NOT_RUN, 1)[1].strip()
                if not reason:
                    failures.append(f"{block.where}: `{printed}` is marked as not run, but gives no reason")
                continue
            requested += API_ADDRESS.findall(command)
            if command.startswith(tuple(RUNS_UNTIL_STOPPED)):
                ready = next(check for prefix, check in RUNS_UNTIL_STOPPED.items() if command.startswith(prefix))(port)
                if (said := runs_until_stopped(command, work, env, ready)) is not None:
                    failures.append(f"{block.where}: `{printed}` should run until stopped, but: {said}")
                continue
            if "collector import-secret" in command:
                (work / "state" / "pseudonym.key").unlink(missing_ok=True)  # it runs on a replacement device, which has none
            if any(words in command for words in PASSPHRASE_COMMANDS):
                done = run_at_a_terminal(command, work, env, [PASSPHRASE, PASSPHRASE])  # asked for, then asked again
            else:
                done = run(command, work, env)
            if done.returncode != 0 and not only_the_clock_failed(command, done):
                failures.append(f"{block.where}: `{printed}` exit {done.returncode}\n{(done.stderr or done.stdout)[-2000:]}")
            stdout = done.stdout
        if block.output is not None and not any(f.startswith(block.where) for f in failures):
            failures += compare_output(block, stdout)
    for shown in (b for b in found if b.language in SHOWN_ONLY):
        for address in API_ADDRESS.findall(shown.body):
            if not any(address in r for r in requested):
                failures.append(f"{shown.where}: {address} (in a {shown.language} block) is asked for by no command that ran")
    assert not failures, "\n\n".join(failures)


def only_the_clock_failed(command: str, done: subprocess.CompletedProcess[str]) -> bool:
    """`collector doctor` exits 1 on a failure, as the docs say; a test machine (a container) keeps no NTP
    time of its own, so there the clock check alone may fail. Every other check must pass."""
    failed = [line for line in done.stdout.splitlines() if line.startswith("FEL")]
    return "collector doctor" in command and done.returncode == 1 and bool(failed) and all(line.split()[1] == "Klocka:" for line in failed)


def compare_output(block: Block, stdout: str) -> list[str]:
    shown = block.output
    assert shown is not None
    if shown.language == "json":
        try:
            actual = orjson.loads(stdout)
        except orjson.JSONDecodeError:
            return [f"{shown.where}: the command printed no JSON: {stdout[:500]!r}"]
        problems = matches_json(orjson.loads(shown.body), actual)
        return [f"{shown.where}: " + "; ".join(problems[:10])] if problems else []
    if not matches_text(shown.body, stdout):
        return [f"{shown.where}: the command printed\n{stdout[:2000]}"]
    return []
