"""What can be checked of deploy/ without running it (the production-shaped test runs the rest): every
setting documented, the units verified by systemd, the container files well-formed and consistent with
the server, certificate rotation keeping the CA."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from vardkoll.server.provisioning.settings import ProvisioningSettings
from vardkoll.server.settings import ServerSettings

from .deployment import DEPLOY, INSTALLED_EXE, UnitFile, read_env_file, vardkoll_exe

SERVER_UNITS = DEPLOY / "server"


def documented_settings() -> set[str]:
    text = (SERVER_UNITS / "vardkoll.env").read_text()
    return set(re.findall(r"^#?\s*(VARDKOLL_[A-Z0-9_]+)=", text, re.MULTILINE))


def test_the_environment_file_documents_every_setting_of_the_server():
    fields = {f"VARDKOLL_{name.upper()}" for model in (ServerSettings, ProvisioningSettings) for name in model.model_fields}
    assert fields - documented_settings() == {"VARDKOLL_INSTANCE"}  # set by the unit, from the slot's name
    assert (
        UnitFile.read(SERVER_UNITS / "vardkoll-server@.service").environment({"/etc/vardkoll/vardkoll.env": SERVER_UNITS / "vardkoll.env"}, "8001")[
            "VARDKOLL_INSTANCE"
        ]
        == "8001"
    )
    assert documented_settings() <= fields, "vardkoll.env documents a setting the server does not have"


def test_the_shipped_settings_are_refused_until_the_secrets_are_changed():
    env = read_env_file(SERVER_UNITS / "vardkoll.env")
    assert [key for key, value in env.items() if "CHANGE-ME" in value] == [
        "VARDKOLL_DATABASE_URL",
        "VARDKOLL_MQTT_PASSWORD",
        "VARDKOLL_BROKER_ADMIN_PASSWORD",
        "VARDKOLL_ADMIN_TOKEN",
        "VARDKOLL_METRICS_TOKEN",
    ]
    assert env["VARDKOLL_DEV"] == "0" and env["VARDKOLL_LOG_FORMAT"] == "json"


def test_nginx_and_the_ingress_refuse_bodies_at_the_servers_limit():
    limit_mib = ServerSettings.model_fields["max_payload_bytes"].default >> 20
    assert f"client_max_body_size {limit_mib}m;" in (DEPLOY / "nginx" / "vardkoll.conf").read_text()
    assert f"proxy-body-size: {limit_mib}m" in (DEPLOY / "kubernetes" / "ingress.yaml").read_text()
    assert f'VARDKOLL_MAX_PAYLOAD_BYTES: "{limit_mib << 20}"' in (DEPLOY / "kubernetes" / "config.yaml").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (package systemd)")
def test_systemd_verifies_the_units_and_rates_the_server_slot_hardened(tmp_path):
    for path in SERVER_UNITS.glob("*.service"):
        text = path.read_text().replace(INSTALLED_EXE, vardkoll_exe())
        name = path.name.replace("@.service", "@8001.service")
        (tmp_path / name).write_text(text)
    shutil.copy(SERVER_UNITS / "vardkoll.target", tmp_path)
    units = sorted(str(p) for p in tmp_path.iterdir())
    verified = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # Only the units it pulls in by name and cannot find here may be missing (they are installed beside it).
    problems = [line for line in (verified.stdout + verified.stderr).splitlines() if line.strip() and "vardkoll-server@8002.service" not in line]
    assert verified.returncode == 0 and problems == [], problems
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(tmp_path / "vardkoll-server@8001.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    rated = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert rated and float(rated.group(1)) <= 2.0, security.stdout[-2000:]


def test_the_server_units_run_the_migration_first_and_each_slot_as_its_own_instance():
    server = UnitFile.read(SERVER_UNITS / "vardkoll-server@.service")
    migrate = UnitFile.read(SERVER_UNITS / "vardkoll-migrate.service")
    assert "vardkoll-migrate.service" in server.unit["Wants"][0] and "vardkoll-migrate.service" in server.unit["After"][0]
    assert "Requires" not in server.unit  # restarting the migration must not restart every slot at once
    assert server.command("8002")[1:] == ["server", "--host", "127.0.0.1", "--port", "8002"]
    assert migrate.command()[1:] == ["migrate"] and migrate.service["Type"] == ["oneshot"]
    for unit in (server, migrate):
        assert unit.service["User"] == ["vardkoll"] and unit.service["ProtectSystem"] == ["strict"] and unit.service["CapabilityBoundingSet"] == [""]


def test_the_container_image_is_multi_stage_non_root_and_checks_the_liveness_route():
    text = (DEPLOY / "container" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE) and "HEALTHCHECK" in text and "/api/v1/health/live" in text
    assert not re.search(r"^COPY (tests|bench|docs|\.venv)", text, re.MULTILINE)


def test_compose_runs_the_migration_before_two_hardened_servers_and_nginx():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "postgres-setup", "mosquitto", "broker-init", "broker-accounts", "migrate", "server-1", "server-2", "nginx"} <= set(services)
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"] == {"postgres-setup": {"condition": "service_completed_successfully"}}
    for name in ("server-1", "server-2"):
        server = services[name]
        assert server["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert server["read_only"] is True and server["cap_drop"] == ["ALL"] and "ports" not in server
        assert set(server["environment"]) <= documented_settings() | {"VARDKOLL_INSTANCE"}
    assert {services[n]["environment"]["VARDKOLL_INSTANCE"] for n in ("server-1", "server-2")} == {"1", "2"}
    nginx_address = services["nginx"]["networks"]["default"]["ipv4_address"]
    assert services["server-1"]["environment"]["VARDKOLL_TRUSTED_PROXIES"] == nginx_address
    mounts = " ".join(services["nginx"]["volumes"])
    assert "./nginx/vardkoll.conf:" in mounts and "./container/nginx-upstream.conf:/etc/nginx/vardkoll-upstream.conf" in mounts
    for volume in (v for service in services.values() for v in service.get("volumes", [])):
        source = volume.split(":")[0]
        if source.startswith("./") and not source.startswith("./secrets"):
            assert (DEPLOY / source).exists(), f"compose.yaml mounts {source}, which deploy/ does not have"


def services_trust_only_their_proxy(trusted: str) -> bool:
    return bool(trusted) and "0.0.0.0/0" not in trusted and "*" not in trusted


def test_the_kubernetes_manifests_hold_probes_on_the_servers_routes_a_migration_job_and_a_budget(tmp_path):
    documents = [doc for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    kinds = {doc["kind"]: doc for doc in documents}
    assert {"ConfigMap", "Secret", "Job", "Deployment", "Service", "PodDisruptionBudget", "Ingress", "NetworkPolicy"} <= set(kinds)
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    assert kinds["Job"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert set(kinds["ConfigMap"]["data"]) <= documented_settings()
    assert services_trust_only_their_proxy(kinds["ConfigMap"]["data"]["VARDKOLL_TRUSTED_PROXIES"])
    from fastapi.testclient import TestClient

    from vardkoll.server.app import create_app
    from vardkoll.server.services import build_services

    settings = ServerSettings(database_url=f"sqlite:///{tmp_path / 'k.db'}", dev=True)
    with TestClient(create_app(settings, build_services(settings, apply_migrations=True), background=False)) as client:
        for probe in (container["readinessProbe"], container["livenessProbe"]):
            assert client.get(probe["httpGet"]["path"]).status_code == 200


def test_running_the_certificate_script_again_renews_the_leaves_under_the_same_ca(tmp_path):
    script = DEPLOY / "tls" / "make-staging-certs.sh"
    run = lambda: subprocess.run([script, tmp_path, "vardkoll.test,127.0.0.1", "mqtt.test"], capture_output=True, text=True, timeout=60, check=True)  # noqa: E731
    run()
    ca, first = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "web.crt").read_bytes()
    run()
    assert (tmp_path / "ca.crt").read_bytes() == ca and (tmp_path / "web.crt").read_bytes() != first
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", tmp_path / "ca.crt", tmp_path / "web.crt", tmp_path / "broker.crt"], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stderr
    names = subprocess.run(["openssl", "x509", "-in", tmp_path / "web.crt", "-noout", "-ext", "subjectAltName"], capture_output=True, text=True).stdout
    assert "DNS:vardkoll.test" in names and "IP Address:127.0.0.1" in names
    assert oct((tmp_path / "web.key").stat().st_mode & 0o777) == "0o600"
