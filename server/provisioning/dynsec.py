"""A small client for Mosquitto's dynamic security plugin (its JSON command API over MQTT).

Commands go to `$CONTROL/dynamic-security/v1` as `{"commands": [...]}`, each with a `correlationData` of
our own; the plugin answers on `$CONTROL/dynamic-security/v1/response` with `{"responses": [...]}`, one
per command, in order. Every server process's admin connection sees every answer on that topic, so
answers are matched by correlation id, never by arrival. Each step has a timeout; every failure is a
`DynsecError` subclass whose message says what failed, on which broker, and what to check. Passwords
travel only inside command payloads and are never part of a message or a log line.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

COMMAND_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"


class DynsecError(RuntimeError):
    """The broker's dynamic security plugin could not do what was asked; the message says why."""


class BrokerUnreachable(DynsecError):
    pass


class AdminRefused(DynsecError):
    """The broker refused the admin account at CONNECT (wrong username or password, or not allowed)."""


class NoAnswer(DynsecError):
    """No answer within the timeout (the plugin not loaded, or the admin account lacks its ACLs)."""


class CommandFailed(DynsecError):
    def __init__(self, command: str, error: str, where: str) -> None:
        super().__init__(f"the dynamic security plugin on {where} refused {command}: {error}")
        self.command = command
        self.error = error


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    tls: bool = False
    ca_file: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class DynsecClient:
    """One admin connection: `with DynsecClient(address) as client: client.run([...])`."""

    def __init__(self, address: BrokerAddress, timeout_s: float = 5.0) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.address = address
        self.timeout_s = timeout_s
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"vardkoll-dynsec-{uuid.uuid4().hex[:12]}", protocol=paho.MQTTv5)
        self._client.username_pw_set(address.username, address.password)
        if address.tls:
            self._client.tls_set(ca_certs=address.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refusal: str | None = None
        self._pending: set[str] = set()  # our correlation ids; answers to other processes are ignored
        self._answers: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -- paho callbacks (network thread) -------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            self._refusal = str(reason_code)
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        if any(code.is_failure for code in reason_codes):
            self._refusal = f"subscription to {RESPONSE_TOPIC} refused ({reason_codes[0]})"
        self._subscribed.set()

    def _on_message(self, client, userdata, message):
        try:
            responses = orjson.loads(message.payload).get("responses", [])
        except (orjson.JSONDecodeError, AttributeError):
            return
        with self._answered:
            for response in responses:
                if isinstance(response, dict) and response.get("correlationData") in self._pending:
                    self._answers[response["correlationData"]] = response
            self._answered.notify_all()

    # -- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> "DynsecClient":
        where = self.address.where
        try:
            self._client.connect(self.address.host, self.address.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnreachable(
                f"cannot reach the broker at {where} ({type(exc).__name__}); check VARDKOLL_BROKER_ADMIN_URL or VARDKOLL_MQTT_URL"
            ) from None
        self._client.loop_start()
        try:
            if not self._connected.wait(self.timeout_s):
                raise NoAnswer(f"the broker at {where} did not answer CONNECT within {self.timeout_s:g} s")
            if self._refusal is not None:
                raise AdminRefused(
                    f"the broker at {where} refused the admin account {self.address.username!r} ({self._refusal}); "
                    "check VARDKOLL_BROKER_ADMIN_USERNAME and VARDKOLL_BROKER_ADMIN_PASSWORD"
                )
            self._client.subscribe(RESPONSE_TOPIC, qos=1)
            if not self._subscribed.wait(self.timeout_s):
                raise NoAnswer(f"the broker at {where} did not confirm the subscription to {RESPONSE_TOPIC} within {self.timeout_s:g} s")
            if self._refusal is not None:
                raise AdminRefused(f"the broker at {where}: {self._refusal}; the admin account needs the dynsec admin role")
        except DynsecError:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- commands ------------------------------------------------------------------------------------

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send `commands` in one message and return their answers in order (each `{"command", "error"?,
        "data"?}`). Raises NoAnswer when any answer is missing after the timeout; errors in answers are the
        caller's to judge (some, like "Client not found" on a delete, are fine)."""
        ids = [uuid.uuid4().hex for _ in commands]
        payload = orjson.dumps({"commands": [{**command, "correlationData": cid} for command, cid in zip(commands, ids)]})
        with self._answered:
            self._pending.update(ids)
        self._client.publish(COMMAND_TOPIC, payload, qos=1)
        with self._answered:
            answered = self._answered.wait_for(lambda: all(cid in self._answers for cid in ids), self.timeout_s)
            self._pending.difference_update(ids)
            if not answered:
                for cid in ids:
                    self._answers.pop(cid, None)
                raise NoAnswer(
                    f"no answer from the dynamic security plugin on {self.address.where} within {self.timeout_s:g} s; "
                    "is the plugin loaded (deploy/broker/mosquitto.conf) and may the admin account publish to $CONTROL/dynamic-security/#?"
                )
            return [self._answers.pop(cid) for cid in ids]

    def check(self, commands: list[dict[str, Any]], tolerated: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """`run`, then raise CommandFailed for the first answer with an error not in `tolerated`."""
        answers = self.run(commands)
        for answer in answers:
            error = answer.get("error")
            if error and error not in tolerated:
                raise CommandFailed(str(answer.get("command")), str(error), self.address.where)
        return answers
