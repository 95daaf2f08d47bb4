"""The FHIR R4 connector's typed config (sample in docs/collector.md and the example TOML)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..base import ConnectorConfig, TimeZoneName
from . import codes

Profession = Literal["doctor", "nurse", "physiotherapist", "psychologist", "occupational_therapist", "other_licensed"]
Form = Literal["physical", "phone", "video", "chat", "letter", "home"]
Channel = Literal["phone", "digital", "visit", "other"]


class FhirR4Config(ConnectorConfig):
    base_url: str  # e.g. https://fhir.example.se/r4 (no trailing /metadata)
    token_file: Path | None = None  # a file holding the bearer token (mode 0600); read at every request
    token_env: str | None = None  # or the name of an environment variable holding it
    ca_file: Path | None = None  # the CA of the FHIR server, when not in the system store
    resources: list[Literal["Encounter", "Appointment"]] = ["Encounter", "Appointment"]
    listing_organizations: list[str] = Field(min_length=1)  # this clinic as Organization reference(s) or HSA-id(s)
    interval_s: float = Field(default=60.0, gt=0)  # how often a sweep for changed resources starts
    page_size: int = Field(default=100, ge=1, le=1000)  # `_count`
    initial_lookback_days: int = Field(default=30, ge=0)  # where the first sweep starts (no cursor yet)
    timeout_s: float = Field(default=30.0, gt=0)
    max_backoff_s: float = Field(default=900.0, gt=0)  # backoff doubles from 5 s up to this after 429/5xx/network errors
    use_include: bool = True  # ask for referenced resources with `_include` (else read them one by one)
    search_params: dict[str, str] = {}  # extra search parameters for both searches, e.g. service-provider
    timezone: TimeZoneName = "Europe/Stockholm"  # for dates written without a time
    professions: dict[str, Profession] = {}  # "system|code" → profession, on top of codes.PROFESSIONS
    forms_by_type: dict[str, Form] = {}  # Encounter.type "system|code" → form, on top of codes.FORMS_BY_TYPE
    forms_by_class: dict[str, Form] = {}  # Encounter.class "system|code" → form, on top of codes.FORMS_BY_CLASS
    case_appointment_types: list[str] = list(codes.CASE_APPOINTMENT_TYPES)  # empty: every appointment opens a case
    default_channel: Channel = "phone"  # how the patient made contact, when the appointment type does not say
    channels_by_appointment_type: dict[str, Channel] = dict(codes.CHANNELS_BY_APPOINTMENT_TYPE)
    noshow_closes_case: bool = True  # a no-show gives care.cancelled like a cancellation

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an https:// URL (http:// only for localhost)")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError("must be https:// (plain http only for localhost): the token and patient data travel on it")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _one_token_source(self) -> "FhirR4Config":
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("give either token_file or token_env, not both")
        return self

    def token(self) -> str | None:
        """The bearer token, read fresh (a rotated token file takes effect at the next request)."""
        if self.token_file is not None:
            return self.token_file.read_text().strip() or None
        if self.token_env is not None:
            return os.environ.get(self.token_env, "").strip() or None
        return None

    def profession_table(self) -> dict[str, str]:
        return {**codes.PROFESSIONS, **self.professions}

    def type_form_table(self) -> dict[str, str]:
        return {**codes.FORMS_BY_TYPE, **self.forms_by_type}

    def class_form_table(self) -> dict[str, str]:
        return {**codes.FORMS_BY_CLASS, **self.forms_by_class}
