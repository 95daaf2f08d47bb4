"""Settings of alert delivery, from the environment like ServerSettings (VARDKOLL_SMTP_*, VARDKOLL_PUBLIC_URL, ...).

Without `VARDKOLL_SMTP_HOST` e-mail deliveries wait (pending, with the reason) rather than fail: setting
the host later sends them. STARTTLS is on by default; `VARDKOLL_SMTP_STARTTLS=false` only for a relay on
the same host.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VARDKOLL_", extra="ignore")

    public_url: str = "http://127.0.0.1:8000"  # where the links in messages point (the dashboard's address)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ca_file: str | None = None  # a private CA to trust for STARTTLS (default: the system's)
    smtp_from: str = "vardkoll@localhost"
    smtp_timeout_s: float = Field(default=20.0, gt=0, le=120)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # A claimed delivery not marked within this is taken again (its sender died): longer than any send.
    delivery_claim_s: float = Field(default=120.0, ge=10)
    delivery_max_attempts: int = Field(default=12, ge=1)  # backoff 30 s doubling to 1 h: about 7 hours in all
    delivery_retry_base_s: float = Field(default=30.0, gt=0, le=3600)  # the first retry's wait, doubled each time
