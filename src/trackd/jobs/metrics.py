"""Prometheus metrics of tracked jobs, and the seed's helpers that feed them.

    @track_task_duration("etf_price_update")
    async def update_prices() -> None:
        increment_task_counter("etf_price_update", "started")
        try:
            ...
            increment_task_counter("etf_price_update", "completed")
        except Exception as exc:
            record_task_error("etf_price_update", exc)
            raise

`BaseTaskTrackingService` feeds the same metrics on every status change, so an application
only calls these around work it does not track through a service. Serve them with
`metrics_router()` (or prometheus-client's own exporters).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar, cast

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Jobs run from milliseconds to hours; Prometheus' default buckets stop at 10 s.
DURATION_BUCKETS = (0.05, 0.25, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600, float("inf"))


class JobMetrics:
    """The job metrics, registered in `registry` (prometheus-client's default one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = REGISTRY if registry is None else registry
        self.registry = registry
        self.duration = Histogram(
            "trackd_job_duration_seconds",
            "Seconds a tracked task ran, from start to its end, by task (domain).",
            ["task"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.tasks = Counter(
            "trackd_job_tasks",
            "Tracked tasks reaching a status (started, completed, failed, cancelled, retried…).",
            ["task", "status"],
            registry=registry,
        )
        self.errors = Counter(
            "trackd_job_errors",
            "Errors recorded for tracked tasks, by task and error type.",
            ["task", "error_type"],
            registry=registry,
        )
        self.publish_failures = Counter(
            "trackd_job_event_publish_failures",
            "Status changes whose trackd events could not be published.",
            ["task"],
            registry=registry,
        )

    def increment(self, task: str, status: str) -> None:
        self.tasks.labels(task=task, status=status).inc()

    def observe_duration(self, task: str, seconds: float) -> None:
        self.duration.labels(task=task).observe(max(0.0, seconds))

    def record_error(self, task: str, error: BaseException | str) -> None:
        # The type, not the message, is the label: messages would make a series per error.
        error_type = type(error).__name__ if isinstance(error, BaseException) else "error"
        self.errors.labels(task=task, error_type=error_type).inc()
        log.warning("task=%s error_type=%s error=%s", task, error_type, error)


@lru_cache(maxsize=1)
def default_metrics() -> JobMetrics:
    """The metrics in prometheus-client's default registry, made on first use."""
    return JobMetrics()


def track_task_duration(
    task: str, *, metrics: JobMetrics | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or async) to observe how long each call takes under `task`.

    Calls that raise are timed too: a failing task took time as well.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                t0 = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    (metrics or default_metrics()).observe_duration(task, time.perf_counter() - t0)

            return cast(Callable[P, R], timed_async)

        @functools.wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                (metrics or default_metrics()).observe_duration(task, time.perf_counter() - t0)

        return timed

    return decorate


def increment_task_counter(task: str, status: str, *, metrics: JobMetrics | None = None) -> None:
    """Count one task of `task` reaching `status` (e.g. "started", "completed")."""
    (metrics or default_metrics()).increment(task, status)


def record_task_error(
    task: str, error: BaseException | str, *, metrics: JobMetrics | None = None
) -> None:
    """Count an error of `task` by its type, and log it."""
    (metrics or default_metrics()).record_error(task, error)


def metrics_router(
    registry: CollectorRegistry | None = None, *, path: str = "/metrics"
) -> APIRouter:
    """A router serving `registry` (the default one if None) in Prometheus' text format."""
    router = APIRouter(tags=["metrics"])
    source = REGISTRY if registry is None else registry

    @router.get(path, response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(source), media_type=CONTENT_TYPE_LATEST)

    return router
