"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from trackd import __version__
from trackd.api import errors, openapi
from trackd.api.boundary import RequestBoundary
from trackd.api.routers import (
    events,
    health,
    internal_trackers,
    league_trackers,
    me_channels,
    metrics,
    modules,
    tracker,
)
from trackd.runtime import Runtime, freeze_startup_heap
from trackd.web import pages as web


def create_app(runtime: Runtime, *, manage: bool = True) -> FastAPI:
    """The app over a runtime; with `manage`, the app starts and stops the runtime."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            await runtime.start()
            freeze_startup_heap()
        try:
            yield
        finally:
            if manage:
                await runtime.stop()

    app = FastAPI(
        title="trackd",
        version=__version__,
        summary="Tracks background work and the outside world: events in; plans, tasks, "
        "timelines and metrics out.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    app.add_middleware(
        RequestBoundary,
        max_bytes=runtime.settings.max_request_bytes,
        policy=runtime.settings.json_policy,
        # POST /v1/events accepts a batch's events one by one (207): the route judges each.
        batches={"/v1/events": "events"},
    )
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(events.router)
    app.include_router(tracker.router)
    app.include_router(league_trackers.router)
    app.include_router(internal_trackers.router)
    app.include_router(me_channels.router)
    app.include_router(modules.router)
    app.include_router(web.router)
    openapi.install(app)
    return app
