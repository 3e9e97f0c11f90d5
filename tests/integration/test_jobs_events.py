"""Status changes of tracking rows reach trackd's tracker: service → bus → ingest → records.

Runs on SQLite and PostgreSQL. The application's tables and trackd's share the database here;
they need not (the publisher is all that joins them).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from jobs_support import Clock, ReportTracking, create_app_tables
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.app import create_app
from trackd.bus.memory import MemoryBus
from trackd.domain.access import Role
from trackd.domain.jobs import JobChange, JobFacts
from trackd.domain.states import TaskState
from trackd.ingest.consumer import IngestConsumer, IngestOptions, IngestStats
from trackd.jobs.events import (
    BusEventPublisher,
    HttpEventPublisher,
    PublishError,
    state_changed,
)
from trackd.jobs.metrics import JobMetrics
from trackd.jobs.service import BaseTaskTrackingService
from trackd.reads.service import agent_metrics
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import anomalies, tasks, tokens

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"


@pytest_asyncio.fixture
async def pipeline(
    engine: AsyncEngine, sessions: Sessions
) -> AsyncIterator[tuple[MemoryBus, IngestStats]]:
    await create_app_tables(engine)
    bus = MemoryBus()
    consumer = IngestConsumer(bus, sessions, IngestOptions(default_tenant=TENANT, idle_wait=0.05))
    running = asyncio.create_task(consumer.run())
    try:
        yield bus, consumer.stats
    finally:
        consumer.stop()
        await running
        await bus.close()


async def test_a_retried_job_shows_up_as_a_trackd_task_with_its_attempts(
    pipeline: tuple[MemoryBus, IngestStats], sessions: Sessions
) -> None:
    bus, stats = pipeline
    clock = Clock(datetime.now(UTC) - timedelta(hours=1))  # within the last 24 h of metrics
    async with sessions() as db:
        svc = BaseTaskTrackingService(
            db,
            ReportTracking,
            tenant_id=TENANT,
            publisher=BusEventPublisher(bus),
            metrics=JobMetrics(CollectorRegistry()),
            clock=clock,
            rng=random.Random(1),
            source="reports-app",
        )
        job = await svc.create_tracking(title="monthly", job_id="c-77")
        clock.advance(1)
        await svc.start(job.id)
        clock.advance(2)
        await svc.fail(job.id, TimeoutError("upstream slow"), retry=True)
        clock.advance(30)
        await svc.start(job.id)
        clock.advance(5)
        await svc.complete(job.id)
        other = await svc.create_tracking(title="dropped")
        await svc.cancel(other.id, "not needed")

    async with sessions() as s:
        record = await tasks.get(s, TENANT, f"report-{job.id}")
        cancelled = await tasks.get(s, TENANT, f"report-{other.id}")
        transitions = await tasks.transitions_of(s, TENANT, f"report-{job.id}")
        refused = await anomalies.for_task(s, TENANT, f"report-{job.id}")
        metrics = await agent_metrics(s, TENANT, "reports-app", "24h")
    assert (stats.rejected, stats.anomalies) == (0, 0)
    assert refused == []
    assert record is not None and cancelled is not None
    assert (record.state, record.event_type, record.attempt) == (TaskState.COMPLETED, "report", 2)
    assert record.agent_id == "reports-app"
    assert record.completed_at == clock.now
    assert [(t.attempt, t.to_state) for t in transitions] == [
        (1, TaskState.PENDING),
        (1, TaskState.RUNNING),
        (1, TaskState.FAILED),
        (2, TaskState.PENDING),
        (2, TaskState.RUNNING),
        (2, TaskState.COMPLETED),
    ]
    assert transitions[2].reason == "TimeoutError: upstream slow"
    assert (cancelled.state, cancelled.error) == (TaskState.CANCELLED, "not needed")
    # The agent platform's metrics count the job once, by the application that sent it.
    assert metrics.metrics.total_tasks == 2


async def test_without_a_publisher_nothing_is_sent(
    pipeline: tuple[MemoryBus, IngestStats], sessions: Sessions
) -> None:
    bus, stats = pipeline
    async with sessions() as db:
        svc = BaseTaskTrackingService(db, ReportTracking, metrics=JobMetrics(CollectorRegistry()))
        job = await svc.create_tracking(title="quiet")
        await svc.start(job.id)

    assert bus.backlog() == 0
    assert stats.folded == 0


async def test_http_publisher_posts_to_a_trackd_server(
    tmp_path: Path, engine: AsyncEngine, sessions: Sessions
) -> None:
    await create_app_tables(engine)
    runtime = Runtime.build(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/trackd.db"))
    await runtime.start()
    try:
        async with runtime.sessions() as s:
            token = await tokens.create(s, "acme", user_id=None, role=Role.SERVICE)
            await s.commit()
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        publisher = HttpEventPublisher("http://trackd", token, transport=transport)
        async with sessions() as db:
            svc = BaseTaskTrackingService(
                db, ReportTracking, publisher=publisher, metrics=JobMetrics(CollectorRegistry())
            )
            job = await svc.create_tracking(title="over http")
            await svc.start(job.id)
        async with runtime.sessions() as s:
            record = await tasks.get(s, "acme", f"report-{job.id}")
        assert record is not None and record.state is TaskState.RUNNING

        facts = JobFacts(TaskState.PENDING, 0, 3, datetime.now(UTC))
        event = state_changed(
            domain="report",
            tracking_id=1,
            tenant_id="acme",
            source="reports-app",
            change=JobChange(facts, facts),
            previous=None,
        )
        refused = HttpEventPublisher("http://trackd", "trk_wrong", transport=transport)
        with pytest.raises(PublishError, match="refused 1 events with 401"):
            await refused.publish([event])
        await publisher.aclose()
        await refused.aclose()
    finally:
        await runtime.stop()


async def test_http_publisher_sends_a_cascade_over_500_changes_and_reads_207_per_event(
    tmp_path: Path, engine: AsyncEngine, sessions: Sessions
) -> None:
    await create_app_tables(engine)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/trackd.db")
    runtime = Runtime.build(settings)
    await runtime.start()
    try:
        async with runtime.sessions() as s:
            token = await tokens.create(s, "acme", user_id=None, role=Role.SERVICE)
            await s.commit()
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        publisher = HttpEventPublisher("http://trackd", token, transport=transport)
        metrics = JobMetrics(CollectorRegistry())
        async with sessions() as db:
            svc = BaseTaskTrackingService(db, ReportTracking, metrics=metrics)
            parent = await svc.create_tracking(title="batch")
            children = [
                await svc.create_tracking(title=f"part {n}", parent_id=parent.id)
                for n in range(520)
            ]
            # One operation, 521 changes: more than one request of the server's may hold.
            svc.publisher = publisher
            cancelled = await svc.cancel(parent.id, "stopped by hand")
        assert len(cancelled) == 521
        assert metrics.publish_failures.labels(task="report")._value.get() == 0
        async with runtime.sessions() as s:
            for job in (parent, children[0], children[-1]):
                record = await tasks.get(s, "acme", f"report-{job.id}")
                assert record is not None and record.state is TaskState.CANCELLED

        # A 207: the server refuses one event (dated two days ahead) and keeps the others.
        now = datetime.now(UTC)
        events = [
            state_changed(
                domain="report",
                tracking_id=n,
                tenant_id="acme",
                source="reports-app",
                change=JobChange(facts, facts),
                previous=None,
            )
            for n, facts in (
                (90_001, JobFacts(TaskState.PENDING, 0, 3, now)),
                (90_002, JobFacts(TaskState.PENDING, 0, 3, now + timedelta(days=2))),
                (90_003, JobFacts(TaskState.PENDING, 0, 3, now)),
            )
        ]
        with pytest.raises(PublishError, match=r"refused 1 of 3 events.*ahead") as raised:
            await publisher.publish(events)
        assert raised.value.failed == 1
        async with runtime.sessions() as s:
            kept = [await tasks.get(s, "acme", f"report-{n}") for n in (90_001, 90_002, 90_003)]
        assert [r is not None for r in kept] == [True, False, True]
        await publisher.aclose()
    finally:
        await runtime.stop()
