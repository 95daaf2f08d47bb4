"""The FastAPI application: the API, and in its lifespan the live hub, the MQTT consumer and the jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .api import api_router
from .live import LiveHub
from .monitoring import RequestIdMiddleware, StateProbe, version
from .monitoring.routes import monitoring_router, state_probe
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
        app.state.consumer = None
        workers = []
        if background:
            from .ingest.mqtt_consumer import MqttConsumer

            from .jobs import JobRunner

            consumer = MqttConsumer(shared, on_commit=hub.changed_from_any_thread)
            consumer.start()
            workers.append(consumer)
            app.state.consumer = consumer
            jobs = JobRunner(shared)
            jobs.start()
            workers.append(jobs)  # stopped first: jobs stop before the consumer
        probe: StateProbe = state_probe(app).register()
        try:
            yield
        finally:
            probe.unregister()
            for worker in reversed(workers):
                worker.stop()
            await hub.stop()

    app = FastAPI(title="vardkoll", version=version(), lifespan=lifespan)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(api_router)
    app.include_router(monitoring_router)  # /metrics, outside the versioned API
    app.include_router(web_router)  # the pages people read, in Swedish
    return app
