"""A FHIR R4 server made of the JSON files in fixtures/fhir/, as an httpx MockTransport or a real loopback server.

Routes: `GET /r4/Encounter` and `GET /r4/Appointment` (searches: their first page), `GET /r4?_getpages=…`
(a HAPI-style next page), `GET /r4/{Type}/{id}` (a read) and `GET /r4/metadata`. `{BASE}` in a file is
replaced by the server's base URL. Failures can be queued (`fail_next`) and every request is recorded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
TOKEN = "test-token-not-a-secret-0001"
PAGES = {"enc-token": "encounter-page-2.json"}
SEARCHES = {"Encounter": "encounter-page-1.json", "Appointment": "appointment-page-1.json"}
CAPABILITY = {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1", "kind": "instance", "format": ["json"]}


@dataclass
class Request:
    path: str
    query: list[tuple[str, str]]
    authorization: str | None


@dataclass
class FhirFixtures:
    base: str = "https://fhir.test.invalid/r4"
    token: str | None = TOKEN
    requests: list[Request] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, str]] | Exception] = field(default_factory=list)  # status and headers, or a transport error
    overrides: dict[str, object] = field(default_factory=dict)  # file name → document served instead

    def respond(self, path: str, query: list[tuple[str, str]], authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(Request(path, query, authorization))
        if self.fail_next:
            failure = self.fail_next.pop(0)
            if isinstance(failure, Exception):
                raise failure
            status, headers = failure
            return status, headers, b'{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient"}]}'
        if self.token is not None and authorization != f"Bearer {self.token}":
            return 401, {}, b'{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}'
        prefix = urlsplit(self.base).path.rstrip("/")
        rest = path[len(prefix) :].strip("/") if path.startswith(prefix) else None
        params = dict(query)
        if rest == "metadata":
            return 200, {}, json.dumps(CAPABILITY).encode()
        if rest == "" and params.get("_getpages") in PAGES:
            return self._file(PAGES[params["_getpages"]])
        if rest in SEARCHES:
            return self._file(SEARCHES[rest])
        name = (rest or "").replace("/", "-") + ".json"
        if rest and rest.count("/") == 1 and (name in self.overrides or (FIXTURES / name).exists()):
            return self._file(name)
        return 404, {}, b'{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}'

    def _file(self, name: str) -> tuple[int, dict[str, str], bytes]:
        if name in self.overrides:
            return 200, {}, json.dumps(self.overrides[name]).replace("{BASE}", self.base).encode()
        return 200, {"Content-Type": "application/fhir+json"}, (FIXTURES / name).read_text().replace("{BASE}", self.base).encode()

    def document(self, name: str) -> dict:
        return json.loads((FIXTURES / name).read_text())

    # -- as an httpx transport ------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            status, headers, body = self.respond(request.url.path, list(request.url.params.multi_items()), request.headers.get("Authorization"))
            return httpx.Response(status, headers=headers, content=body, request=request)

        return httpx.MockTransport(handle)

    def searches(self, resource: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/" + resource) or (resource == "Encounter" and "_getpages" in dict(r.query))]


class LoopbackFhirServer:
    """The same fixtures from a real HTTP server on 127.0.0.1 (a thread of stdlib `http.server`)."""

    def __init__(self, fixtures: FhirFixtures | None = None) -> None:
        self.fixtures = fixtures or FhirFixtures()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                parts = urlsplit(self.path)
                try:
                    status, headers, body = outer.fixtures.respond(parts.path, parse_qsl(parts.query), self.headers.get("Authorization"))
                except Exception:  # noqa: BLE001 - a queued transport error: drop the connection
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in {"Content-Type": "application/fhir+json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.fixtures.base = f"http://127.0.0.1:{self._server.server_address[1]}/r4"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return self.fixtures.base

    def __enter__(self) -> "LoopbackFhirServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
