"""Log lines as text (the default) or as JSON objects (`VARDKOLL_LOG_FORMAT=json`), each with the id of
the request it belongs to.

The request id comes from the proxy's `X-Request-ID` when it is a plain token (nginx sets one, so the
proxy's log and ours can be joined), else a new one; every answer carries it back. The access line is
ours, not uvicorn's: method, path (no query string), status and duration, never the client's
address or anything a person typed.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson

REQUEST_ID_HEADER = "x-request-id"
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("vardkoll_request_id", default=None)
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("vardkoll.access")


def request_id() -> str | None:
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and a job's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            line["request_id"] = rid
        for key in ("event", "fields", "http"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            # Type and code locations only; the exception's text may quote rows (see the ingest log).
            line["error"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            line["trace"] = self.formatException(record.exc_info).splitlines()[-8:-1]
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{text} request_id={rid}" if rid else text


def log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` document for the server (also given to uvicorn as its log_config)."""
    formatter = "json" if log_format == "json" else "text"
    handler = {"class": "logging.StreamHandler", "formatter": formatter, "filters": ["request_id"], "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"json": {"()": JsonFormatter}, "text": {"()": TextFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            # uvicorn's access line names the client's address and the query string: ours replaces it.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "alembic": {"level": "WARNING"},  # the schema check at start-up is not news
        },
    }


def configure_logging(log_format: str, level: str = "INFO") -> None:
    import logging.config

    logging.config.dictConfig(log_config(log_format, level))


class RequestIdMiddleware:
    """Pure ASGI (no buffering, so server-sent events stream through untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        rid = given if _PLAIN_ID.match(given) else uuid.uuid4().hex
        token = _request_id.set(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")  # units, devices and page names; codes and tokens never travel in a path
            access_log.info(
                "%s %s %s",
                scope.get("method"),
                path,
                status,
                extra={
                    "http": {"method": scope.get("method"), "path": path, "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
                },
            )
            _request_id.reset(token)
