"""No control characters (NUL and the rest of C0, and DEL) in any text a request carries.

PostgreSQL cannot store NUL in text: a NUL in a unit, a token label, a config value or a page's
parameter failed with 500 (and the log then held the statement's parameters). Refused here, before any
route, with 422 and a reason naming where: the path, a query parameter, or the body (JSON or a form).
Tab, line feed and carriage return are allowed in bodies (a text area may hold lines), nowhere else.
`POST /api/v1/events` is left to ingest, which judges each event on its own with a reason.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_IN_TEXT = re.compile(r"[\x00-\x1f\x7f]")
_IN_BODY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A JSON escape of a control character (not itself escaped: an even number of backslashes before it).
_ESCAPED_IN_JSON = re.compile(rb"(?<!\\)(?:\\\\)*\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])")
_BODY_CHECK_MAX_BYTES = 1 << 20
_LEFT_TO_INGEST = "/api/v1/events"


def _problem(scope: Scope, body: bytes) -> tuple[str, str] | None:
    """(where, name) of the first control character found, or None."""
    if _IN_TEXT.search(scope.get("path", "")):
        return "path", "path"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _IN_TEXT.search(name) or _IN_TEXT.search(value):
            return "query", _IN_TEXT.sub("?", name)[:40]
    if body:
        kind = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind == b"application/x-www-form-urlencoded":
            if _IN_BODY.search(unquote_to_bytes(body.replace(b"+", b" "))):
                return "body", "form"
        elif _ESCAPED_IN_JSON.search(body) or _IN_BODY.search(body):
            return "body", "body"
    return None


class ControlCharacterGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "POST" and scope["path"] == _LEFT_TO_INGEST):
            await self.app(scope, receive, send)
            return
        body, messages = b"", []
        if scope["method"] in ("POST", "PUT", "PATCH"):
            while True:  # buffered (these bodies are small) and handed on unchanged below
                message = await receive()
                messages.append(message)
                body += message.get("body", b"")
                if message["type"] != "http.request" or not message.get("more_body") or len(body) > _BODY_CHECK_MAX_BYTES:
                    break
        problem = _problem(scope, body if len(body) <= _BODY_CHECK_MAX_BYTES else b"")
        if problem is not None:
            await _refuse(scope, send, *problem)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay if messages else receive, send)


async def _refuse(scope: Scope, send: Send, where: str, name: str) -> None:
    message = f"{'the ' + where if where != 'query' else 'query parameter ' + repr(name)} holds a control character (such as NUL); remove it"
    if scope["path"].startswith("/api/"):
        body = orjson.dumps({"detail": [{"loc": [where, name], "msg": message, "type": "value_error"}]})
        kind = b"application/json"
    else:
        body = "Ogiltig förfrågan: texten innehåller ett styrtecken (till exempel NUL). Ta bort det och försök igen.\n".encode()
        kind = b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 422, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": body})
