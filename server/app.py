"""The FastAPI application: the API, and in its lifespan the live hub, the MQTT consumer and the jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from .access_log import record_change_from_request

from .api import api_router
from .live import LiveHub
from .services import Services, build_services
from .web import web_router
from .settings import ServerSettings


def create_app(settings: ServerSettings | None = None, services: Services | None = None, background: bool = True) -> FastAPI:
    """`background=False` serves the API only, for tests that drive ingest themselves."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        shared = services or build_services(settings)
        app.state.services = shared
        hub = LiveHub(shared.sessions)
        hub.start()
        app.state.live = hub
        workers = []
        if background:
            from .ingest.mqtt_consumer import MqttConsumer

            from .jobs import JobRunner

            consumer = MqttConsumer(shared, on_commit=hub.changed_from_any_thread)
            consumer.start()
            workers.append(consumer)
            jobs = JobRunner(shared)
            jobs.start()
            workers.append(jobs)  # stopped first: jobs stop before the consumer
        try:
            yield
        finally:
            for worker in reversed(workers):
                worker.stop()
            await hub.stop()

    app = FastAPI(title="vardkoll", version="1", lifespan=lifespan)

    @app.middleware("http")
    async def access_log_of_changes(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and hasattr(request.state, "principal"):
            await run_in_threadpool(record_change_from_request, request.app.state.services.sessions, request, response.status_code)
        return response

    app.include_router(api_router)
    app.include_router(web_router)  # the pages people read, in Swedish
    return app
