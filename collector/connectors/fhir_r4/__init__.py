"""FHIR R4 connector: Encounters and Appointments changed since the last sweep → care and visit events.

Every `interval_s` a sweep searches each configured resource type with `_lastUpdated=ge{cursor}`,
follows the Bundle's `next` links page by page, and hands each page's events to the agent (stored in the
outbox before the next page is fetched). The cursor — the highest `meta.lastUpdated` seen — is stored as
this connector's checkpoint with the sweep's last page, so a restart resumes there; pages of an
interrupted sweep are read again and their events, having the same ids, count once. A server pages over
the matches it found when the search ran but serves each one as it is when the page is read: a resource
changed meanwhile comes with a later lastUpdated than things written after the search, which no page of
this sweep holds. So the cursor never passes the search's own time (the searchset Bundle's
meta.lastUpdated, as HAPI sets it); what lies between is read again by the next sweep and counts once.

Referenced Patients, Practitioners, PractitionerRoles and Appointments come from the page itself
(`_include`) or are read one by one (cached for the sweep). 429, 5xx and network errors stop the sweep
where it is; it resumes at the same page after a backoff (Retry-After when the server sends one, else
5 s doubling up to `max_backoff_s`). A resource that breaks a rule is counted (`malformed`) and
reported by position, never by content, and the sweep goes on. Mapping rules: `mapping.py`; code
tables: `codes.py`; docs/collector.md ("fhir_r4").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from ...outbox import Checkpoint
from ..base import Connector, ConnectorContext, SourceBatch
from . import mapping
from .client import FhirClient, FhirError, FhirUnavailable
from .config import FhirR4Config

FIRST_BACKOFF_S = 5.0
_CACHE_LIMIT = 5000
_INCLUDES = {
    "Encounter": ["Encounter:subject", "Encounter:participant", "Encounter:appointment"],
    "Appointment": ["Appointment:patient"],
}
_MAPPERS = {"Encounter": mapping.encounter_events, "Appointment": mapping.appointment_events}


@dataclass
class _Sweep:
    resource: str
    url: str  # the page to fetch next (a search, or a `next` link)
    params: list[tuple[str, str]] | None
    cursor: datetime | None  # the highest meta.lastUpdated seen in this sweep so far
    page: int = 0
    searched_at: datetime | None = None  # the first page's Bundle.meta.lastUpdated: when the server ran the search
    cache: dict[str, Any] = field(default_factory=dict)


class FhirR4Connector(Connector):
    Config = FhirR4Config
    config: FhirR4Config

    def __init__(self, config: FhirR4Config, context: ConnectorContext, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config, context)
        self.client = FhirClient(
            config.base_url,
            config.token,
            timeout_s=config.timeout_s,
            verify=str(config.ca_file) if config.ca_file else True,
            transport=transport,
            wall_clock=context.wall_clock,
        )
        self.tables = mapping.Tables(
            professions=config.profession_table(),
            forms_by_type=config.type_form_table(),
            forms_by_class=config.class_form_table(),
            case_appointment_types=frozenset(config.case_appointment_types),
            default_channel=config.default_channel,
            channels_by_appointment_type=dict(config.channels_by_appointment_type),
            listing_organizations=frozenset(o.strip() for o in config.listing_organizations),
            noshow_closes_case=config.noshow_closes_case,
            zone=ZoneInfo(config.timezone),
        )
        self._sweeps: dict[str, _Sweep] = {}  # unfinished sweeps, resumed at their page
        self._next_sweep_at = 0.0
        self._not_before = 0.0
        self._failures = 0
        self.last_error: str | None = None

    def close(self) -> None:
        self.client.close()

    # -- the schedule ---------------------------------------------------------------------------------

    def poll(self) -> Iterator[SourceBatch]:
        now = self.context.wall_clock()
        if now < self._not_before or (now < self._next_sweep_at and not self._sweeps):
            return
        for resource in self.config.resources:
            sweep = self._sweeps.get(resource) or self._new_sweep(resource, now)
            self._sweeps[resource] = sweep
            try:
                yield from self._run(sweep)
            except FhirUnavailable as exc:
                self._failures += 1
                wait = exc.retry_after_s if exc.retry_after_s is not None else FIRST_BACKOFF_S * 2 ** (self._failures - 1)
                wait = min(wait, self.config.max_backoff_s)
                self._not_before = now + wait
                self.count("unavailable")
                self.last_error = str(exc)
                yield SourceBatch([], problems=[f"FHIR server unavailable: {exc}; trying again in {wait:.0f} s"])
                return
            except FhirError as exc:
                # Waiting will not fix it (a refused token, a wrong URL): report it, try at the next interval.
                self.count("errors")
                self.last_error = str(exc)
                del self._sweeps[resource]
                self._next_sweep_at = now + self.config.interval_s
                yield SourceBatch([], problems=[f"FHIR request failed: {exc}"])
                return
            del self._sweeps[resource]
        self._failures = 0
        self.last_error = None
        self._next_sweep_at = now + self.config.interval_s

    def _checkpoint_key(self, resource: str) -> str:
        return f"{resource}.last_updated"

    def _new_sweep(self, resource: str, now: float) -> _Sweep:
        stored = self.context.checkpoint(self._checkpoint_key(resource))
        cursor = datetime.fromisoformat(stored) if stored else None
        since = cursor or datetime.fromtimestamp(now, timezone.utc) - timedelta(days=self.config.initial_lookback_days)
        params = [("_lastUpdated", "ge" + since.isoformat().replace("+00:00", "Z")), ("_count", str(self.config.page_size))]
        if self.config.use_include:
            params += [("_include", include) for include in _INCLUDES[resource]]
        params += sorted(self.config.search_params.items())
        return _Sweep(resource, resource, params, cursor)

    # -- one sweep ------------------------------------------------------------------------------------

    def _run(self, sweep: _Sweep) -> Iterator[SourceBatch]:
        while True:
            bundle = self.client.get_json(sweep.url, sweep.params)
            if bundle.get("resourceType") != "Bundle":
                raise FhirError(f"{sweep.resource} search did not answer with a Bundle")
            if sweep.page == 0:
                sweep.searched_at = mapping.last_updated(bundle)
            batch, newest = self._page(sweep, bundle, sweep.page + 1)
            sweep.page += 1
            if newest is not None and (sweep.cursor is None or newest > sweep.cursor):
                sweep.cursor = newest
            following = _next_link(bundle)
            if following is None:
                if (resume := _resume_point(sweep)) is not None:
                    batch.checkpoint = Checkpoint(self.context.name, self._checkpoint_key(sweep.resource), resume.isoformat())
                yield batch
                return
            if not _same_origin(following, self.client.base_url):
                raise FhirError(f"{sweep.resource} search: the next-page link points to another server; not followed (the token would go there)")
            yield batch
            sweep.url, sweep.params = following, None

    def _page(self, sweep: _Sweep, bundle: dict[str, Any], page: int) -> tuple[SourceBatch, datetime | None]:
        batch = SourceBatch(events=[])
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            entries = []
        matches: list[tuple[int, Any]] = []
        for number, entry in enumerate(entries, start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            mode = (entry.get("search") or {}).get("mode") if isinstance(entry, dict) and isinstance(entry.get("search"), dict) else None
            if isinstance(resource, dict) and mode == "include":
                self._remember(sweep, resource)
            elif isinstance(resource, dict) and resource.get("resourceType") != sweep.resource and mode is None:
                self._remember(sweep, resource)  # an included resource from a server that does not mark it
            else:
                matches.append((number, resource))
        newest = None
        resolve = lambda key: self._resolve(sweep, key)  # noqa: E731
        for number, resource in matches:
            where = f"{sweep.resource} search, page {page}, entry {number}"
            if not isinstance(resource, dict) or resource.get("resourceType") != sweep.resource:
                self.count("malformed")
                batch.problems.append(f"{where}: not a {sweep.resource} resource")
                continue
            changed = mapping.last_updated(resource)
            if changed is not None and (newest is None or changed > newest):
                newest = changed
            try:
                mapped = _MAPPERS[sweep.resource](resource, resolve, self.tables)
            except mapping.Malformed as exc:
                self.count("malformed")
                batch.problems.append(f"{where}: {exc}")
                continue
            self.count(sweep.resource.lower() + "s")
            for note in mapped.notes:
                self.count(note)
            batch.events += mapped.events
        return batch, newest

    # -- referenced resources -------------------------------------------------------------------------

    def _remember(self, sweep: _Sweep, resource: dict[str, Any]) -> None:
        kind, ident = resource.get("resourceType"), resource.get("id")
        if isinstance(kind, str) and isinstance(ident, str) and len(sweep.cache) < _CACHE_LIMIT:
            sweep.cache[f"{kind}/{ident}"] = resource

    def _resolve(self, sweep: _Sweep, key: str) -> dict[str, Any] | None:
        if key in sweep.cache:
            return sweep.cache[key]
        try:
            resource = self.client.get_json(key)
        except FhirError as exc:
            if exc.status in (404, 410):
                resource = None
            else:
                raise
        if resource is not None and resource.get("resourceType") != key.split("/", 1)[0]:
            resource = None
        if len(sweep.cache) < _CACHE_LIMIT:
            sweep.cache[key] = resource
        return resource


def _same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _resume_point(sweep: _Sweep) -> datetime | None:
    """Where the next sweep starts: the newest lastUpdated seen, but not past the search's own time."""
    if sweep.cursor is None or sweep.searched_at is None:
        return sweep.cursor
    return min(sweep.cursor, sweep.searched_at)


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str) and link["url"]:
            return link["url"]
    return None


__all__ = ["FhirR4Config", "FhirR4Connector"]
