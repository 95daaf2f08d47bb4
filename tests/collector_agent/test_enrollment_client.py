"""`vardkoll collector enroll`: redeems the code, keeps or creates the secret, writes 0600 files."""

from __future__ import annotations

import json
import stat

import httpx
import pytest

from vardkoll.collector.config import load_config
from vardkoll.collector.enrollment import EnrollmentError, enroll

from .events import UNIT

SERVER = "https://vardkoll.example.test"


def fake_server(status: int = 200, seen: list | None = None, broker_account: bool = False):
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append((str(request.url), json.loads(request.content)))
        if status != 200:
            return httpx.Response(status, json={"detail": "this enrollment code has been used already; ask for a new one"})
        body = json.loads(request.content)
        mqtt = {"url": "mqtts://mqtt.example.test:8883", "topic_prefix": "vardkoll", "username": None, "password": None}
        if broker_account:
            mqtt.update(username=f"{UNIT}/{body['device']}", password="broker-password-shown-once")
        return httpx.Response(200, json={"unit": UNIT, "device": body["device"], "token": "tok-secret-value", "mqtt": mqtt})

    return httpx.MockTransport(handle)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_enroll_writes_config_token_and_secret_with_mode_0600(tmp_path):
    seen: list = []
    config, state = tmp_path / "etc" / "collector.toml", tmp_path / "state"
    result = enroll(SERVER, "ABCDE-FGHJK", "pi-test-01", config, state, transport=fake_server(seen=seen))
    assert seen == [(f"{SERVER}/api/v1/enroll", {"code": "ABCDE-FGHJK", "device": "pi-test-01"})]
    assert result.secret_created and (result.unit, result.device) == (UNIT, "pi-test-01")
    for path in (config, state / "api-token", state / "pseudonym.key"):
        assert mode(path) == 0o600, path
    assert (state / "api-token").read_text().strip() == "tok-secret-value"
    loaded = load_config(config)
    assert (loaded.unit, loaded.device, loaded.mqtt.url, loaded.mqtt.topic_prefix) == (UNIT, "pi-test-01", "mqtts://mqtt.example.test:8883", "vardkoll")
    assert loaded.pseudonyms.secret_file == state / "pseudonym.key"


def test_an_existing_secret_is_kept(tmp_path):
    state = tmp_path / "state"
    enroll(SERVER, "C", "pi-1", tmp_path / "a.toml", state, transport=fake_server())
    before = (state / "pseudonym.key").read_bytes()
    again = enroll(SERVER, "C", "pi-1", tmp_path / "b.toml", state, transport=fake_server())
    assert not again.secret_created and (state / "pseudonym.key").read_bytes() == before


def test_an_existing_config_is_not_overwritten_and_the_code_is_not_spent(tmp_path):
    config = tmp_path / "collector.toml"
    config.write_text("keep")
    seen: list = []
    with pytest.raises(EnrollmentError, match="exists already"):
        enroll(SERVER, "C", "pi-1", config, tmp_path / "state", transport=fake_server(seen=seen))
    assert seen == [] and config.read_text() == "keep"


def test_a_refused_code_says_why_and_writes_nothing(tmp_path):
    with pytest.raises(EnrollmentError, match="HTTP 403.*used already"):
        enroll(SERVER, "C", "pi-1", tmp_path / "c.toml", tmp_path / "state", transport=fake_server(403))
    assert not (tmp_path / "c.toml").exists() and not (tmp_path / "state").exists()


def test_plain_http_only_for_localhost_and_device_ids_are_checked(tmp_path):
    with pytest.raises(EnrollmentError, match="https://"):
        enroll("http://vardkoll.example.test", "C", "pi-1", tmp_path / "c.toml", tmp_path / "s", transport=fake_server())
    with pytest.raises(EnrollmentError, match="device id"):
        enroll(SERVER, "C", "bad id", tmp_path / "c.toml", tmp_path / "s", transport=fake_server())
    enroll("http://localhost:8000", "C", "pi-1", tmp_path / "c.toml", tmp_path / "s", transport=fake_server())


def test_a_broker_account_from_the_server_goes_into_the_config_and_a_0600_password_file(tmp_path):
    config, state = tmp_path / "etc" / "collector.toml", tmp_path / "state"
    result = enroll(SERVER, "C", "pi-test-01", config, state, transport=fake_server(broker_account=True))
    assert result.mqtt_password_file == config.parent / "mqtt-password" and mode(result.mqtt_password_file) == 0o600
    loaded = load_config(config)
    assert loaded.mqtt.username == f"{UNIT}/pi-test-01" and loaded.mqtt.password_file == result.mqtt_password_file
    assert loaded.mqtt.password_value() == "broker-password-shown-once"
    assert "broker-password-shown-once" not in config.read_text()  # only in the password file


def test_without_a_broker_account_the_config_leaves_the_credentials_to_the_operator(tmp_path):
    config = tmp_path / "collector.toml"
    result = enroll(SERVER, "C", "pi-1", config, tmp_path / "state", transport=fake_server())
    loaded = load_config(config)
    assert result.mqtt_password_file is None and loaded.mqtt.username is None and loaded.mqtt.password_file is None
    assert not (tmp_path / "mqtt-password").exists() and "manual broker setup" in config.read_text()
