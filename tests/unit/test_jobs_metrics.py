"""Job metrics: the seed's helpers and the exposition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import DeclarativeBase

from trackd.domain.jobs import JobChange, JobFacts
from trackd.domain.states import TaskState
from trackd.jobs.metrics import (
    JobMetrics,
    increment_task_counter,
    metrics_router,
    record_task_error,
    track_task_duration,
)
from trackd.jobs.models import BaseTaskTracking
from trackd.jobs.service import unit
from trackd.jobs.service.views import TaskView


class Base(DeclarativeBase):
    pass


class ReportTracking(BaseTaskTracking, Base):
    __domain__ = "report"


@pytest.fixture
def metrics() -> JobMetrics:
    return JobMetrics(CollectorRegistry())


def value(metrics: JobMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_durations_of_sync_and_failing_calls_are_observed(metrics: JobMetrics) -> None:
    @track_task_duration("sync_task", metrics=metrics)
    def add(a: int, b: int) -> int:
        return a + b

    @track_task_duration("sync_task", metrics=metrics)
    def boom() -> None:
        raise RuntimeError("no")

    assert add(2, 3) == 5
    with pytest.raises(RuntimeError):
        boom()
    assert value(metrics, "trackd_job_duration_seconds_count", task="sync_task") == 2.0
    assert add.__name__ == "add"


async def test_durations_of_async_calls_are_observed(metrics: JobMetrics) -> None:
    @track_task_duration("async_task", metrics=metrics)
    async def nap(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "rested"

    assert await nap(0.02) == "rested"
    total = value(metrics, "trackd_job_duration_seconds_sum", task="async_task")
    assert total is not None and total >= 0.02


def test_counters_and_errors_by_type(metrics: JobMetrics) -> None:
    increment_task_counter("etl", "started", metrics=metrics)
    increment_task_counter("etl", "started", metrics=metrics)
    record_task_error("etl", ValueError("bad row"), metrics=metrics)
    record_task_error("etl", "a message", metrics=metrics)

    assert value(metrics, "trackd_job_tasks_total", task="etl", status="started") == 2.0
    assert value(metrics, "trackd_job_errors_total", task="etl", error_type="ValueError") == 1.0
    assert value(metrics, "trackd_job_errors_total", task="etl", error_type="error") == 1.0


async def test_the_router_serves_the_registry(metrics: JobMetrics) -> None:
    increment_task_counter("etl", "completed", metrics=metrics)
    app = FastAPI()
    app.include_router(metrics_router(metrics.registry))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert 'trackd_job_tasks_total{status="completed",task="etl"} 1.0' in response.text


def test_an_end_stamped_before_its_start_counts_as_no_time(metrics: JobMetrics) -> None:
    # Two machines' clocks: the end may be stamped a little before the start.
    start = datetime(2026, 1, 2, 10, 0, 5, tzinfo=UTC)
    before = JobFacts(TaskState.RUNNING, 1, 3, start, started_at=start)
    after = JobFacts(
        TaskState.COMPLETED,
        1,
        3,
        start,
        started_at=start,
        completed_at=start - timedelta(seconds=2),
    )
    row = ReportTracking(id=7, started_at=start, completed_at=after.completed_at)
    unit.count(metrics, "report", [unit.Effect(row, JobChange(before, after), "running")])
    assert value(metrics, "trackd_job_duration_seconds_count", task="report") == 1
    assert value(metrics, "trackd_job_duration_seconds_sum", task="report") == 0.0
    assert TaskView(row, "report", "report-7", (), None, False).duration_seconds == 0.0
