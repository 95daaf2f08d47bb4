"""How a config document reaches the broker: a seam, so tests and the API can run without one."""

from __future__ import annotations

from typing import Any, Callable

from .broker import RemoteConfigError, publish_config
from ..settings import ServerSettings

# (unit, device, version, sections) -> the topic it was published on, retained; BrokerUnavailable otherwise.
ConfigPublisher = Callable[[str, str, str, dict[str, Any]], str]
PUBLISH_TIMEOUT_S = 5.0


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached, refused the connection or did not confirm the document."""


def broker_publisher(settings: ServerSettings, timeout_s: float = PUBLISH_TIMEOUT_S) -> ConfigPublisher:
    """Publishes with the server's own broker settings, through the code the admin command always used."""

    def publish(unit: str, device: str, version: str, sections: dict[str, Any]) -> str:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        try:
            return publish_config(
                unit,
                device,
                version,
                sections,
                host=settings.mqtt_host,
                port=settings.mqtt_port,
                username=settings.mqtt_username,
                password=password,
                tls=settings.mqtt_tls,
                ca_file=settings.mqtt_ca_file,
                prefix=settings.topic_prefix,
                timeout_s=timeout_s,
            )
        except RemoteConfigError as exc:  # the document was checked before: what is left is the broker
            raise BrokerUnavailable(str(exc)) from None

    return publish
