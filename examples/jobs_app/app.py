"""The example's own FastAPI app: its task API (trackd.jobs) and its Prometheus metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from trackd.domain.retry import Backoff
from trackd.jobs.api import DomainRegistry, tasks_router
from trackd.jobs.events import JobEventPublisher
from trackd.jobs.metrics import metrics_router
from trackd.store.engine import create_engine, session_factory

from .services import ContributionTrackingService, ETFPriceUpdateService

# Short, so that the demo shows a retry within seconds; a real app keeps trackd's default.
DEMO_BACKOFF = Backoff(base=0.2, factor=2.0, cap=1.0, jitter=0.5)


def service_options(publisher: JobEventPublisher | None) -> dict[str, Any]:
    return {"publisher": publisher, "backoff": DEMO_BACKOFF, "source": "jobs-app"}


def create_app(database_url: str, publisher: JobEventPublisher | None = None) -> FastAPI:
    engine = create_engine(database_url)
    sessions = session_factory(engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    registry = DomainRegistry()
    options = service_options(publisher)
    registry.add(ETFPriceUpdateService.model, sessions, service=ETFPriceUpdateService, **options)
    registry.add(
        ContributionTrackingService.model, sessions, service=ContributionTrackingService, **options
    )
    app = FastAPI(title="jobs_app", lifespan=lifespan)
    app.include_router(tasks_router(registry))
    app.include_router(metrics_router())
    return app
