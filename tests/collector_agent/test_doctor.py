"""`vardkoll collector doctor` against a real Mosquitto: good and bad credentials, a dead port, and the other checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from support import free_port
from vardkoll.collector.doctor import run_doctor
from vardkoll.collector.outbox import Outbox
from vardkoll.collector.pseudonyms import load_or_create_secret

from .events import DEVICE, UNIT, offered_many
from .fhir_fixtures import TOKEN, LoopbackFhirServer

USER, PASSWORD = "pi-test-01", "rätt-lösenord-för-test"


def synced():
    return True, "test"


@pytest.fixture
def secured_broker(mosquitto_factory, tmp_path):
    passwords = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), USER, PASSWORD], check=True, capture_output=True)
    passwords.chmod(0o600)
    return mosquitto_factory(["allow_anonymous false", f"password_file {passwords}"])


def write_config(tmp_path: Path, url: str, password: str = PASSWORD, extra: str = "", **outbox) -> Path:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (tmp_path / "exports").mkdir(exist_ok=True)
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    load_or_create_secret(state / "pseudonym.key")
    budget = outbox.get("max_bytes", 10 * 1024 * 1024)
    path = tmp_path / "collector.toml"
    path.write_text(
        f'unit = "{UNIT}"\ndevice = "{DEVICE}"\n'
        f'[mqtt]\nurl = "{url}"\nusername = "{USER}"\npassword_file = "{password_file}"\n'
        f'[outbox]\npath = "{state / "outbox.db"}"\nmax_bytes = {budget}\n'
        f'[pseudonyms]\nsecret_file = "{state / "pseudonym.key"}"\n'
        f'[[connectors]]\ntype = "callback_csv"\nfolder = "{tmp_path / "exports"}"\n' + extra
    )
    return path


def lines(report, status: str) -> list[str]:
    return [line for line in report.text.splitlines() if line.startswith(status)]


def test_everything_right_reports_ok_and_exits_zero(tmp_path, secured_broker):
    report = run_doctor(write_config(tmp_path, secured_broker.url), timeout_s=5, ntp=synced)
    assert report.exit_code == 0, report.text
    assert f"OK      Broker: ansluten till 127.0.0.1:{secured_broker.port} utan TLS som {USER}" in report.text
    assert "OK      Pseudonymnyckel:" in report.text and "OK      Källa callback_csv: mappen" in report.text
    assert report.text.rstrip().endswith("Resultat: allt OK.")


def test_a_wrong_password_is_refused_with_what_to_check(tmp_path, secured_broker):
    report = run_doctor(write_config(tmp_path, secured_broker.url, password="fel-lösenord"), timeout_s=5, ntp=synced)
    assert report.exit_code == 1
    (broker,) = [line for line in lines(report, "FEL") if "Broker" in line]
    assert f"127.0.0.1:{secured_broker.port} nekade inloggningen för {USER}" in broker
    assert "Gör så här: Kontrollera [mqtt] username och lösenordet i password_file" in report.text
    assert "fel-lösenord" not in report.text
    assert "Resultat: 1 fel" in report.text


def test_an_unreachable_port_says_the_broker_refused_the_connection(tmp_path):
    port = free_port()
    report = run_doctor(write_config(tmp_path, f"mqtt://127.0.0.1:{port}"), timeout_s=3, ntp=synced)
    assert report.exit_code == 1
    assert f"FEL     Broker: 127.0.0.1:{port} vägrade anslutningen" in report.text
    assert "Traceback" not in report.text


def make_tls_files(folder: Path) -> tuple[Path, Path, Path, Path]:
    """A throwaway CA, a broker certificate for 127.0.0.1 signed by it, and an unrelated CA (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    for name in ("ca", "other-ca"):
        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=vardkoll test {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem"
        )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem"
    )
    return folder / "ca.pem", folder / "broker.pem", folder / "broker.key", folder / "other-ca.pem"


def test_tls_with_the_right_ca_connects_and_with_another_ca_fails_the_handshake(tmp_path, mosquitto_factory):
    tls = tmp_path / "tls"
    tls.mkdir()
    ca, cert, key, other_ca = make_tls_files(tls)
    broker = mosquitto_factory([f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"])
    config = write_config(tmp_path, f"mqtts://127.0.0.1:{broker.port}", extra="")
    text = config.read_text()
    config.write_text(text.replace("[outbox]", f'ca_file = "{ca}"\n[outbox]'))
    good = run_doctor(config, timeout_s=5, ntp=synced)
    assert f"OK      Broker: ansluten till 127.0.0.1:{broker.port} med TLS" in good.text, good.text
    config.write_text(text.replace("[outbox]", f'ca_file = "{other_ca}"\n[outbox]'))
    bad = run_doctor(config, timeout_s=5, ntp=synced)
    assert f"FEL     Broker: TLS-handskakningen med 127.0.0.1:{broker.port} misslyckades" in bad.text, bad.text
    assert "Gör så här: Kontrollera att adressen är brokerns och att [mqtt] ca_file pekar på rätt CA-certifikat." in bad.text


def test_the_cli_prints_the_report_and_exits_non_zero_on_a_failure(tmp_path, secured_broker):
    config = write_config(tmp_path, secured_broker.url)
    (tmp_path / "state" / "pseudonym.key").chmod(0o644)
    result = subprocess.run(
        [sys.executable, "-m", "vardkoll.collector", "doctor", "--config", str(config), "--timeout-s", "5"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "OK      Broker: ansluten till" in result.stdout
    assert "FEL     Pseudonymnyckel:" in result.stdout and "läge 644" in result.stdout
    assert f"Gör så här: Kör: chmod 600 {tmp_path / 'state' / 'pseudonym.key'}" in result.stdout
    assert result.stderr == ""


def test_a_config_that_cannot_be_loaded_is_one_clear_failure(tmp_path):
    path = tmp_path / "collector.toml"
    path.write_text('unit = "VC Norrby"\ndevice = "pi-1"\n')
    report = run_doctor(path, ntp=synced)
    assert report.exit_code == 1
    assert lines(report, "FEL") == [f"FEL     Konfiguration: {path}: unit: must be the clinic's HSA-id, e.g. SE2321000016-15SF"]


def test_sources_missing_folder_and_log_file_are_failures(tmp_path):
    extra = f'[[connectors]]\ntype = "asterisk_queue_log"\npath = "{tmp_path / "queue_log"}"\n'
    config = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", extra=extra)
    (tmp_path / "exports").rmdir()
    report = run_doctor(config, timeout_s=2, ntp=synced)
    assert f"FEL     Källa callback_csv: mappen {tmp_path / 'exports'} finns inte" in report.text
    assert f"FEL     Källa asterisk_queue_log: {tmp_path / 'queue_log'} finns inte" in report.text


def test_a_fhir_source_answers_or_says_the_token_was_refused(tmp_path):
    token_file = tmp_path / "fhir-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    with LoopbackFhirServer() as server:
        extra = f'[[connectors]]\ntype = "fhir_r4"\nname = "journal"\nbase_url = "{server.base_url}"\ntoken_file = "{token_file}"\nlisting_organizations = ["{UNIT}"]\n'
        config = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", extra=extra)
        good = run_doctor(config, timeout_s=2, ntp=synced)
        server.fixtures.token = "another-token"
        refused = run_doctor(config, timeout_s=2, ntp=synced)
    assert f"OK      Källa journal: FHIR-servern {server.base_url} svarar (FHIR 4.0.1)" in good.text
    assert "OK      Klocka: stämmer med http://127.0.0.1" in good.text  # from the server's Date header
    assert "FEL     Källa journal: FHIR-servern svarade med fel:" in refused.text and "HTTP 401" in refused.text
    assert TOKEN not in good.text + refused.text


def test_a_clock_far_from_the_server_or_unsynced_is_a_failure(tmp_path):
    config = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    now = float(int(time.time()))  # the Date header has whole seconds
    behind = httpx.MockTransport(lambda request: httpx.Response(200, headers={"Date": formatdate(now + 600, usegmt=True)}))
    report = run_doctor(config, server_url="https://vardkoll.test.invalid", timeout_s=2, ntp=synced, http_transport=behind, now=lambda: now)
    assert any("Klocka: 600 s efter https://vardkoll.test.invalid" in line for line in lines(report, "FEL")), report.text
    unsynced = run_doctor(config, timeout_s=2, ntp=lambda: (False, "adjtimex"))
    assert "FEL     Klocka: inte synkroniserad med NTP (adjtimex)" in unsynced.text
    stale = run_doctor(config, timeout_s=2, ntp=synced, now=lambda: 946684800.0)  # 2000-01-01
    assert "FEL     Klocka: klockan visar 2000-01-01 00:00 UTC, före installationen av programmet" in stale.text


def test_the_outbox_depth_oldest_event_and_a_budget_larger_than_the_disk(tmp_path):
    config = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", max_bytes=10**15)
    outbox = Outbox(tmp_path / "state" / "outbox.db", unit=UNIT, device=DEVICE)
    outbox.add(offered_many(3))  # events of 2026-03-02
    outbox.close()
    report = run_doctor(config, timeout_s=2, ntp=synced, now=lambda: 1772600000.0 + 3 * 86400)
    assert "VARNING Utkorg: 3 händelser väntar, äldsta från 2026-03-02 07:00 UTC" in report.text
    assert any(line.startswith("FEL     Disk:") and "budget är 953674316 MiB" in line for line in report.text.splitlines())


def test_the_checks_use_the_last_good_remote_version_and_a_rollback_is_a_warning(tmp_path, secured_broker):
    from vardkoll.collector.remote_config import RemoteConfig, RemoteState, save_state

    config = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}")  # the file names a dead port ...
    state = RemoteState(
        applied=RemoteConfig("5", {"mqtt": {"url": secured_broker.url}}),
        last_seen="6",
        outcome="rolled_back",
        rejected_version="6",
        rejected_reason="no broker connection within 30 s; rolled back",
    )
    save_state(tmp_path / "state" / "remote-config.json", state)  # ... version 5 moved the device to a live broker
    report = run_doctor(config, timeout_s=5, ntp=synced)
    assert "OK      Fjärrkonfiguration: version 5 gäller (kontrollerna nedan gäller den)" in report.text
    assert "VARNING Fjärrkonfiguration: version 6 rullades tillbaka: no broker connection within 30 s; rolled back" in report.text
    assert f"OK      Broker: ansluten till 127.0.0.1:{secured_broker.port}" in report.text
    assert report.exit_code == 0, report.text
