"""Running tracked work: the seed's helpers and the due-task runner re-run what failed."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from jobs_support import Clock, ReportTracking, create_app_tables
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.domain.retry import Backoff
from trackd.jobs.helpers import handle_task_error, retry_with_backoff, update_task_status
from trackd.jobs.metrics import JobMetrics
from trackd.jobs.runner import RunSummary, run_due
from trackd.jobs.service import BaseTaskTrackingService

Sessions = async_sessionmaker[AsyncSession]
Service = BaseTaskTrackingService[ReportTracking]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def svc(engine: AsyncEngine, sessions: Sessions, clock: Clock) -> AsyncIterator[Service]:
    await create_app_tables(engine)
    async with sessions() as db:
        yield BaseTaskTrackingService(
            db,
            ReportTracking,
            clock=clock,
            metrics=JobMetrics(CollectorRegistry()),
            backoff=Backoff(base=10, factor=2, cap=600, jitter=0.5),
            rng=random.Random(3),
        )


async def test_retry_with_backoff_runs_the_work_again_until_it_succeeds(
    svc: Service, clock: Clock
) -> None:
    task = await svc.create_tracking(title="flaky", max_attempts=3)
    calls: list[int] = []
    waits: list[float] = []

    async def work(t: ReportTracking) -> str:
        calls.append(t.attempts)
        if len(calls) < 3:
            raise ConnectionError(f"try {len(calls)}")
        return "done"

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    assert await retry_with_backoff(svc, task.id, work, sleep=sleep) == "done"

    assert calls == [1, 2, 3]  # the work really ran three times, one attempt each
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20
    row = await svc.get_status(task.id)
    assert (row.status, row.attempts, row.error_message) == ("completed", 3, None)


async def test_retry_with_backoff_gives_up_after_max_attempts(svc: Service, clock: Clock) -> None:
    task = await svc.create_tracking(title="doomed", max_attempts=2)

    async def work(t: ReportTracking) -> None:
        raise ValueError(f"bad input on attempt {t.attempts}")

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    with pytest.raises(ValueError, match="attempt 2"):
        await retry_with_backoff(svc, task.id, work, sleep=sleep)
    row = await svc.get_status(task.id)
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.error_message == "ValueError: bad input on attempt 2"


async def test_handle_task_error_says_when_to_retry_then_that_it_is_over(svc: Service) -> None:
    task = await svc.create_tracking(title="x", max_attempts=2)
    await update_task_status(svc, task.id, "PROCESSING")

    delay = await handle_task_error(svc, task.id, RuntimeError("boom"))
    assert delay is not None and 5 <= delay <= 10
    await update_task_status(svc, task.id, "PROCESSING")
    assert await handle_task_error(svc, task.id, RuntimeError("boom")) is None
    assert (await svc.get_status(task.id)).status == "failed"


async def test_run_due_runs_each_due_task_once_and_retries_later(
    svc: Service, clock: Clock
) -> None:
    ok = await svc.create_tracking(title="ok")
    flaky = await svc.create_tracking(title="flaky")
    after_ok = await svc.create_tracking(title="after ok", depends_on=[ok.id])
    waits_on_flaky = await svc.create_tracking(title="after flaky", depends_on=[flaky.id])
    runs: dict[str, int] = {}

    async def handler(t: ReportTracking) -> None:
        runs[t.title] = runs.get(t.title, 0) + 1
        if t.title == "flaky" and runs["flaky"] == 1:
            raise TimeoutError("upstream slow")

    first = await run_due(svc, handler)
    assert first == RunSummary(completed=2, retried=1, failed=0, blocked=1)
    assert (await svc.get_status(waits_on_flaky.id)).status == "pending"
    assert await run_due(svc, handler) == RunSummary(blocked=1)  # flaky is not due yet
    clock.advance(60)
    assert await run_due(svc, handler) == RunSummary(completed=2)

    assert runs == {"ok": 1, "flaky": 2, "after ok": 1, "after flaky": 1}
    row = await svc.get_status(flaky.id)
    assert (row.status, row.attempts) == ("completed", 2)
    assert (await svc.get_status(after_ok.id)).status == "completed"
    assert await run_due(svc, handler) == RunSummary()


async def test_a_task_is_claimed_once(svc: Service) -> None:
    task = await svc.create_tracking(title="x")

    first = await svc.claim(task.id)
    assert first is not None and first.status == "running"
    assert await svc.claim(task.id) is None
