"""The FastAPI application: the API, and in its lifespan the live hub, the MQTT consumer and the jobs
(each of the last two unless the settings turn it off for this process: `consume_mqtt`, `run_jobs`).

The factory checks its settings itself (`uvicorn --factory vardkoll.server.app:create_app` gets the
same refusals as `vardkoll server`): no admin token or a weak one outside dev mode stops it; dev mode
answers only connections to a loopback address (server/guards/dev_mode.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from .access_log import record_change_from_request

from .api import api_router
from .gc_tuning import tuned_for_serving
from .guards import ControlCharacterGuard, LoopbackOnly, TrustedProxies
from .live import LiveHub
from .monitoring import RequestIdMiddleware, StateProbe, version
from .monitoring.routes import monitoring_router, state_probe
from .services import Services, build_consumer, build_services
from .web import web_router
from .settings import ServerSettings


def create_app(settings: ServerSettings | None = None, services: Services | None = None, background: bool = True) -> FastAPI:
    """`background=False` serves the API only, for tests that drive ingest themselves."""
    settings = settings or ServerSettings()
    settings.check_secure()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        shared = services or build_services(settings)
        app.state.services = shared
        hub = LiveHub(shared.sessions)
        hub.start()
        app.state.live = hub
        app.state.consumer = None
        workers = []
        if background and shared.settings.consume_mqtt:
            consumer = build_consumer(shared, on_commit=hub.changed_from_any_thread)
            consumer.start()  # returns at once; connects (and reconnects) in the background
            app.state.consumer = consumer
            workers.append(consumer)
        if background and shared.settings.run_jobs:
            from .jobs import JobRunner

            jobs = JobRunner(shared)
            jobs.start()
            workers.append(jobs)  # stopped first: jobs stop before the consumer
        probe: StateProbe = state_probe(app).register()
        try:
            # Last: everything the process keeps while serving is built by now.
            with tuned_for_serving() if background else nullcontext():
                yield
        finally:
            probe.unregister()
            for worker in reversed(workers):
                worker.stop()
            await hub.stop()

    app = FastAPI(title="vardkoll", version=version(), lifespan=lifespan)

    @app.middleware("http")
    async def access_log_of_changes(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and hasattr(request.state, "principal"):
            await run_in_threadpool(record_change_from_request, request.app.state.services.sessions, request, response.status_code)
        return response

    app.include_router(api_router)
    app.include_router(monitoring_router)  # /metrics, outside the versioned API
    app.include_router(web_router)  # the pages people read, in Swedish
    app.add_middleware(ControlCharacterGuard)
    app.add_middleware(TrustedProxies, trusted=settings.trusted_proxy_networks)  # type: ignore[arg-type]  # starlette's typing of middleware kwargs
    app.add_middleware(RequestIdMiddleware)  # outside the guards: their refusals get a request id and an access line too
    if settings.dev:
        app.add_middleware(LoopbackOnly)  # outermost: nothing else runs for a refused connection
    return app
