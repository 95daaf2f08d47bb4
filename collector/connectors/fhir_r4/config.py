"""The FHIR R4 connector's typed config (sample in docs/collector.md and the example TOML)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from msgspec import Meta, field, structs

from ..base import ConnectorConfig
from . import codes

Profession = Literal["doctor", "nurse", "physiotherapist", "psychologist", "occupational_therapist", "other_licensed"]
Form = Literal["physical", "phone", "video", "chat", "letter", "home"]
Channel = Literal["phone", "digital", "visit", "other"]


class FhirR4Config(ConnectorConfig):
    time_zone_keys: ClassVar[tuple[str, ...]] = ("timezone",)

    base_url: str  # e.g. https://fhir.example.se/r4 (no trailing /metadata)
    listing_organizations: Annotated[list[str], Meta(min_length=1)]  # this clinic as Organization reference(s) or HSA-id(s)
    token_file: Path | None = None  # a file holding the bearer token (mode 0600); read at every request
    token_env: str | None = None  # or the name of an environment variable holding it
    ca_file: Path | None = None  # the CA of the FHIR server, when not in the system store
    resources: list[Literal["Encounter", "Appointment"]] = field(default_factory=lambda: ["Encounter", "Appointment"])
    interval_s: Annotated[float, Meta(gt=0)] = 60.0  # how often a sweep for changed resources starts
    page_size: Annotated[int, Meta(ge=1, le=1000)] = 100  # `_count`
    initial_lookback_days: Annotated[int, Meta(ge=0)] = 30  # where the first sweep starts (no cursor yet)
    timeout_s: Annotated[float, Meta(gt=0)] = 30.0
    max_backoff_s: Annotated[float, Meta(gt=0)] = 900.0  # backoff doubles from 5 s up to this after 429/5xx/network errors
    use_include: bool = True  # ask for referenced resources with `_include` (else read them one by one)
    search_params: dict[str, str] = {}  # extra search parameters for both searches, e.g. service-provider
    timezone: str = "Europe/Stockholm"  # for dates written without a time
    professions: dict[str, Profession] = {}  # "system|code" → profession, on top of codes.PROFESSIONS
    forms_by_type: dict[str, Form] = {}  # Encounter.type "system|code" → form, on top of codes.FORMS_BY_TYPE
    forms_by_class: dict[str, Form] = {}  # Encounter.class "system|code" → form, on top of codes.FORMS_BY_CLASS
    case_appointment_types: list[str] = field(default_factory=lambda: list(codes.CASE_APPOINTMENT_TYPES))  # empty: every appointment opens a case
    default_channel: Channel = "phone"  # how the patient made contact, when the appointment type does not say
    channels_by_appointment_type: dict[str, Channel] = field(default_factory=lambda: dict(codes.CHANNELS_BY_APPOINTMENT_TYPE))
    noshow_closes_case: bool = True  # a no-show gives care.cancelled like a cancellation

    def check(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("base_url: must be an https:// URL (http:// only for localhost)")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError("base_url: must be https:// (plain http only for localhost): the token and patient data travel on it")
        structs.force_setattr(self, "base_url", self.base_url.rstrip("/"))
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("give either token_file or token_env, not both")

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
