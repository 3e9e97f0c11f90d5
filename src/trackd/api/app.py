"""The API's FastAPI application (the dashboard joins it in `trackd.app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from trackd import __version__
from trackd.api import errors, openapi
from trackd.api.boundary import RequestBoundary
from trackd.api.job_caller import trackd_bearer
from trackd.api.routers import (
    events,
    health,
    league_internal,
    league_trackers,
    me_channels,
    me_journal,
    metrics,
    modules,
    natal,
    observer,
    task_reads,
    traces,
    tracking,
    transits,
)
from trackd.jobs.api import DomainRegistry, tasks_router
from trackd.runtime import Runtime, freeze_startup_heap


def create_api(
    runtime: Runtime, *, manage: bool = True, jobs: DomainRegistry | None = None
) -> FastAPI:
    """The API over a runtime; with `manage`, the app starts and stops the runtime.

    `jobs` are `trackd.jobs` domains to serve under `/v1/tasks/{domain}` with trackd's tokens
    (tenants kept apart); they stay in `app.state.job_domains` for the dashboard.
    """

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
        # /docs is served from the package (trackd.web.docs), not from a CDN; no ReDoc, which
        # would need one.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    errors.install(app)
    app.add_middleware(
        RequestBoundary,
        max_bytes=runtime.settings.max_request_bytes,
        policy=runtime.settings.json_policy,
        # POST /v1/events accepts a batch's events one by one (207): the route judges each.
        batches={"/v1/events": events.BATCH_KEY},
        # OTLP exporters gzip their bodies; POST /v1/traces inflates (bounded) and judges them.
        inflating={"/v1/traces"},
    )
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(events.router)
    app.include_router(traces.router)
    app.include_router(task_reads.router)
    app.include_router(league_trackers.router)
    app.include_router(league_internal.router)
    app.include_router(me_channels.router)
    app.include_router(me_journal.router)
    app.include_router(observer.router)
    app.include_router(modules.router)
    app.include_router(natal.router)
    # Before tracking's routes: /v1/tracking/transits and /upcoming are their own.
    app.include_router(transits.router)
    app.include_router(tracking.router)
    app.state.job_domains = jobs or DomainRegistry()
    if jobs is not None:
        app.include_router(tasks_router(jobs, caller=trackd_bearer()))
    openapi.install(app)
    return app
