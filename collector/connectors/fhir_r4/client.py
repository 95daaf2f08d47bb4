"""HTTP to the FHIR server: bearer token, JSON, and errors sorted into "try later" and "wrong".

The token is read from its file or variable at each request and goes only into the Authorization
header; no message here ever contains it, a URL's query or a response body (which may hold patient
data). Waiting is not done here: `FhirUnavailable` carries the server's Retry-After and the connector
decides when to try again, so the agent's loop never sleeps in a connector.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable

import httpx

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def quiet_request_logs() -> None:
    """httpx logs every request URL at INFO (httpcore at DEBUG). A read such as `Patient/<id>` can carry
    a personal identity number where a record system uses it as the logical id, so in a process that
    talks to a FHIR server their records stay out of the log (which goes to journald)."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class FhirError(RuntimeError):
    """A request that will not work by waiting (401, 403, 404, a body that is not FHIR JSON); says what to check."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FhirUnavailable(RuntimeError):
    """Overloaded, failing or unreachable: try again later (after `retry_after_s` when the server said)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FhirClient:
    def __init__(
        self,
        base_url: str,
        token: Callable[[], str | None],
        timeout_s: float = 30.0,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        quiet_request_logs()
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._wall_clock = wall_clock or (lambda: datetime.now(timezone.utc).timestamp())
        self._http = httpx.Client(timeout=timeout_s, verify=verify, transport=transport, follow_redirects=False, headers={"Accept": "application/fhir+json"})

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def where(self, url: str) -> str:
        """The URL as messages may show it: no query (search parameters, paging tokens) and no resource id
        (some systems use the personal number as a Patient's id): `https://host/r4/Patient/…`."""
        bare = url.split("?", 1)[0]
        if not bare.startswith(self.base_url + "/"):
            return bare
        steps = bare[len(self.base_url) + 1 :].split("/")
        return f"{self.base_url}/{steps[0]}" + ("/…" if len(steps) > 1 else "")

    def get_json(self, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> dict[str, Any]:
        url = self.url(path)
        where = self.where(url)
        headers = {}
        try:
            token = self._token()
        except OSError as exc:
            raise FhirError(f"cannot read the FHIR token file ({exc.strerror}); check `token_file`") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.get(url, params=params, headers=headers)
        except httpx.TimeoutException:
            raise FhirUnavailable(f"{where}: no answer within the timeout") from None
        except httpx.TransportError as exc:
            raise FhirUnavailable(f"{where}: cannot connect ({type(exc).__name__})") from None
        status = response.status_code
        if status in RETRY_STATUSES:
            raise FhirUnavailable(f"{where}: HTTP {status}", _retry_after(response.headers.get("Retry-After"), self._wall_clock()))
        if status in (401, 403):
            raise FhirError(f"{where}: HTTP {status}: the token was refused; check `token_file`/`token_env` and the token's scopes", status)
        if status != 200:
            raise FhirError(f"{where}: HTTP {status}", status)
        try:
            document = response.json()
        except ValueError:
            raise FhirError(f"{where}: the answer is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise FhirError(f"{where}: the answer is not a FHIR resource")
        return document


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, moment.timestamp() - now)
