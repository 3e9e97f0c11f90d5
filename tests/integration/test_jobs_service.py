"""BaseTaskTrackingService and BaseTaskTrackingCRUD on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, timedelta
from typing import Any

import pytest
import pytest_asyncio
from jobs_support import (
    AGGREGATES,
    Clock,
    InvoiceTracking,
    LonelyTracking,
    ReportTracking,
    create_app_tables,
)
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.domain.events import EventEnvelope
from trackd.domain.retry import Backoff
from trackd.errors import ConfigError
from trackd.jobs.crud import BaseTaskTrackingCRUD
from trackd.jobs.metrics import JobMetrics
from trackd.jobs.service import (
    BaseTaskTrackingService,
    IllegalStatusChange,
    InvalidTask,
    PrerequisiteFailed,
    TaskBlocked,
    TaskNotFound,
)

Sessions = async_sessionmaker[AsyncSession]
Service = BaseTaskTrackingService[ReportTracking]


@pytest_asyncio.fixture
async def app_sessions(engine: AsyncEngine, sessions: Sessions) -> Sessions:
    await create_app_tables(engine)
    return sessions


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics() -> JobMetrics:
    return JobMetrics(CollectorRegistry())


@pytest_asyncio.fixture
async def db(app_sessions: Sessions) -> AsyncIterator[AsyncSession]:
    async with app_sessions() as session:
        yield session


class Recorder:
    """A publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        self.events.extend(envelopes)


def service(db: AsyncSession, clock: Clock, metrics: JobMetrics, **kwargs: Any) -> Service:
    kwargs.setdefault("backoff", Backoff(base=10, factor=2, cap=600, jitter=0.5))
    return BaseTaskTrackingService(
        db, ReportTracking, clock=clock, metrics=metrics, rng=random.Random(7), **kwargs
    )


async def test_a_run_is_recorded_with_utc_times_attempts_and_events(
    db: AsyncSession, app_sessions: Sessions, clock: Clock, metrics: JobMetrics
) -> None:
    events = Recorder()
    svc = service(db, clock, metrics, publisher=events)

    task = await svc.create_tracking(title="Q1", pages=3, job_id="celery-1")
    t0 = clock.now
    await svc.update_status(task.id, "PROCESSING")
    clock.advance(42)
    await svc.update_status(task.id, "SUCCESS")

    async with app_sessions() as fresh:
        row = await fresh.get(ReportTracking, task.id)
    assert row is not None
    assert (row.status, row.attempts, row.max_attempts) == ("completed", 1, 3)
    assert (row.title, row.pages, row.job_id, row.celery_task_id) == (
        "Q1",
        3,
        "celery-1",
        "celery-1",
    )
    assert row.started_at == t0 and row.completed_at == clock.now
    assert row.started_at.tzinfo is not None and row.started_at.utcoffset() == timedelta(0)
    assert row.created_at == t0 and row.updated_at == clock.now
    assert [(e.data or {})["new_state"] for e in events.events] == [
        "pending",
        "running",
        "completed",
    ]
    first = events.events[0]
    assert first.data == {
        "task_id": f"report-{task.id}",
        "new_state": "pending",
        "event_type": "report",
        "max_attempts": 3,
        "domain": "report",
        "tracking_id": task.id,
        "job_id": "celery-1",
    }
    assert [e.attempt for e in events.events] == [1, 1, 1]
    assert {e.tenant_id for e in events.events} == {"default"}
    done = metrics.registry.get_sample_value(
        "trackd_job_tasks_total", {"task": "report", "status": "completed"}
    )
    assert done == 1.0
    assert metrics.registry.get_sample_value(
        "trackd_job_duration_seconds_sum", {"task": "report"}
    ) == pytest.approx(42.0)


async def test_illegal_changes_unknown_tasks_and_other_tenants_are_refused(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics)
    task = await svc.create_tracking(title="x")
    await svc.update_status(task.id, "running")
    await svc.update_status(task.id, "completed")

    with pytest.raises(IllegalStatusChange, match="final"):
        await svc.update_status(task.id, "running")
    with pytest.raises(IllegalStatusChange, match="unknown task state"):
        await svc.update_status(task.id, "EXPLODED")
    with pytest.raises(IllegalStatusChange, match="only a task that has not ended"):
        await svc.cancel(task.id)
    with pytest.raises(TaskNotFound):
        await svc.get_status(task.id + 1000)
    other = service(db, clock, metrics, tenant_id="globex")
    with pytest.raises(TaskNotFound):
        await other.get_status(task.id)
    with pytest.raises(TaskNotFound):
        await other.update_status(task.id, "running")
    assert (await svc.get_status(task.id)).status == "completed"


async def test_bad_creations_say_what_is_wrong(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics)

    with pytest.raises(InvalidTask, match="colour"):
        await svc.create_tracking(title="x", colour="red")
    with pytest.raises(InvalidTask, match="status cannot be set"):
        await svc.create_tracking(title="x", status="completed")
    with pytest.raises(InvalidTask, match="max_attempts is from 1"):
        await svc.create_tracking(title="x", max_attempts=0)
    with pytest.raises(InvalidTask, match="depends_on: no report task 99"):
        await svc.create_tracking(title="x", depends_on=[99])
    with pytest.raises(InvalidTask, match="metadata keys depends_on"):
        await svc.create_tracking(title="x", metadata={"depends_on": [1]})
    assert await svc.crud.count(db) == 0


async def test_a_session_that_expires_on_commit_is_refused(engine: AsyncEngine) -> None:
    async with async_sessionmaker(engine)() as session:
        with pytest.raises(ConfigError, match="expire_on_commit=False"):
            BaseTaskTrackingService(session, ReportTracking)


async def test_failures_are_retried_with_backoff_until_max_attempts(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    events = Recorder()
    svc = service(db, clock, metrics, publisher=events)
    task = await svc.create_tracking(title="flaky", max_attempts=2)
    await svc.start(task.id)

    await svc.fail(task.id, ConnectionError("reset"), retry=True)
    row = await svc.get_status(task.id)
    assert (row.status, row.attempts, row.error_message) == ("pending", 1, "ConnectionError: reset")
    assert row.next_attempt_at is not None
    delay = (row.next_attempt_at - clock.now).total_seconds()
    assert 5.0 <= delay <= 10.0  # base 10 s, half of it jitter
    assert await svc.crud.get_due(db, clock.now) == []
    clock.advance(delay)
    assert [t.id for t in await svc.crud.get_due(db, clock.now)] == [task.id]

    await svc.start(task.id)
    await svc.fail(task.id, ConnectionError("reset again"), retry=True)
    row = await svc.get_status(task.id)
    assert (row.status, row.attempts) == ("failed", 2)  # no attempt left
    with pytest.raises(IllegalStatusChange, match="used 2 of its 2 attempts"):
        await svc.retry(task.id)
    states = [((e.data or {})["new_state"], e.attempt) for e in events.events]
    assert states == [
        ("pending", 1),
        ("running", 1),
        ("failed", 1),
        ("pending", 2),
        ("running", 2),
        ("failed", 2),
    ]
    errors = metrics.registry.get_sample_value(
        "trackd_job_errors_total", {"task": "report", "error_type": "ConnectionError"}
    )
    assert errors == 2.0


async def test_retry_word_and_explicit_retry(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics)
    task = await svc.create_tracking(title="x")
    await svc.start(task.id)
    await svc.update_status(task.id, "FAILED", "disk full")

    retried = await svc.update_status(task.id, "RETRY")
    assert (retried.status, retried.error_message) == ("pending", "disk full")
    await svc.start(task.id)
    await svc.fail(task.id, "again")
    now_retried = await svc.retry(task.id, delay=0)
    assert now_retried.next_attempt_at == clock.now
    restarted = await svc.start(task.id)
    assert (restarted.attempts, restarted.error_message) == (3, None)


async def test_cancel_cascades_to_dependents_and_children_and_runs_the_hook(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    cleaned: list[tuple[int, str]] = []

    async def release(task: ReportTracking, reason: str) -> None:
        cleaned.append((task.id, reason))

    svc = service(db, clock, metrics, on_cancel=release)
    root = await svc.create_tracking(title="root")
    chain = await svc.create_chain([{"title": "a"}, {"title": "b"}], parent_id=None)
    child = await svc.create_tracking(title="child", parent_id=root.id)
    grandchild = await svc.create_tracking(title="grandchild", depends_on=[child.id])
    done_child = await svc.create_tracking(title="done child", parent_id=root.id)
    await svc.start(done_child.id)
    await svc.complete(done_child.id)
    await svc.start(root.id)
    await svc.start(child.id)

    cancelled = await svc.cancel(root.id, "user asked")

    assert [t.id for t in cancelled] == [root.id, child.id, grandchild.id]
    assert cleaned == [
        (root.id, "user asked"),
        (child.id, f"task {root.id} was cancelled: user asked"),
        (grandchild.id, f"task {root.id} was cancelled: user asked"),
    ]
    assert (await svc.get_status(done_child.id)).status == "completed"
    assert {(await svc.get_status(t.id)).status for t in chain} == {"pending"}
    assert [t.id for t in await svc.children(root.id)] == [child.id, done_child.id]
    # The chain: cancelling its head cancels the rest.
    assert [t.id for t in await svc.cancel(chain[0].id)] == [chain[0].id, chain[1].id]


async def test_a_failing_cancel_hook_does_not_undo_the_cancellation(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    class Strict(BaseTaskTrackingService[ReportTracking]):
        model = ReportTracking

        async def on_cancel(self, task: ReportTracking, reason: str) -> None:
            raise RuntimeError("cleanup broke")

    svc = Strict(db, clock=clock, metrics=metrics)
    task = await svc.create_tracking(title="x")

    await svc.cancel(task.id, "stop")

    assert (await svc.get_status(task.id)).status == "cancelled"


async def test_prerequisites_hold_a_task_back_until_they_complete(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics)
    first, second = await svc.create_chain([{"title": "extract"}, {"title": "load"}])

    with pytest.raises(TaskBlocked, match=f"waiting for prerequisites to complete: {first.id}"):
        await svc.start(second.id)
    view = await svc.describe(second.id)
    assert view.blocked_by == (first.id,)
    assert view.trackd_task_id == f"report-{second.id}"
    await svc.start(first.id)
    await svc.complete(first.id)
    assert (await svc.describe(second.id)).blocked_by == ()
    assert (await svc.start(second.id)).status == "running"


def b_row_expected(failed_id: int) -> tuple[str, str]:
    return ("failed", f"prerequisite {failed_id} failed: source down")


async def test_policy_fail_fails_the_dependents_of_a_failed_task(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics, on_prerequisite_failure="fail")
    a, b, c = await svc.create_chain([{"title": "a"}, {"title": "b"}, {"title": "c"}])
    await svc.start(a.id)

    await svc.fail(a.id, "source down")

    b_row, c_row = await svc.get_status(b.id), await svc.get_status(c.id)
    assert (b_row.status, b_row.error_message) == b_row_expected(a.id)
    # The root cause, for the whole chain behind it.
    assert (c_row.status, c_row.error_message) == b_row_expected(a.id)
    # A task created on a failed prerequisite fails at once.
    late = await svc.create_tracking(title="late", depends_on=[a.id])
    assert (await svc.get_status(late.id)).status == "failed"


async def test_policy_fail_at_start_when_a_prerequisite_failed_meanwhile(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    blocker = service(db, clock, metrics, on_prerequisite_failure="block")
    a, b = await blocker.create_chain([{"title": "a"}, {"title": "b"}])
    await blocker.start(a.id)
    await blocker.fail(a.id, "boom")
    strict = service(db, clock, metrics, on_prerequisite_failure="fail")

    with pytest.raises(PrerequisiteFailed, match=f"prerequisite {a.id} failed: boom"):
        await strict.start(b.id)
    assert (await strict.get_status(b.id)).status == "failed"


async def test_policy_block_keeps_dependents_pending_until_the_prerequisite_recovers(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics, on_prerequisite_failure="block")
    a, b = await svc.create_chain([{"title": "a"}, {"title": "b"}])
    await svc.start(a.id)
    await svc.fail(a.id, "source down")

    b_row = await svc.get_status(b.id)
    assert (b_row.status, b_row.error_message) == (
        "pending",
        f"blocked: prerequisite {a.id} failed: source down",
    )
    with pytest.raises(TaskBlocked, match="blocked: prerequisite"):
        await svc.start(b.id)
    view = await svc.describe(b.id)
    assert (view.blocked_by, view.blocked_reason) == (
        (a.id,),
        f"prerequisite {a.id} failed: source down",
    )

    await svc.retry(a.id, delay=0)
    await svc.start(a.id)
    await svc.complete(a.id)
    started = await svc.start(b.id)
    assert (started.status, started.error_message) == ("running", None)


async def test_stale_running_tasks_are_failed_cancelled_or_retried(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics, stale_after=timedelta(minutes=10))
    quiet, chatty, retried, cancelled = [await svc.create_tracking(title=t) for t in "abcd"]
    for t in (quiet, chatty, retried, cancelled):
        await svc.start(t.id)
    clock.advance(9 * 60)
    await svc.heartbeat(chatty.id)
    clock.advance(2 * 60)

    assert (await svc.describe(quiet.id)).stale
    assert not (await svc.describe(chatty.id)).stale
    swept = await svc.sweep_stale(limit=1)  # the oldest update first
    assert [t.id for t in swept] == [quiet.id]
    row = await svc.get_status(quiet.id)
    assert row.status == "failed"
    assert row.error_message == "stale: no update for 660 s (timeout 600 s)"
    assert [t.id for t in await svc.sweep_stale(retry=True, limit=1)] == [retried.id]
    assert (await svc.get_status(retried.id)).status == "pending"
    assert [t.id for t in await svc.sweep_stale(action="cancelled")] == [cancelled.id]
    assert (await svc.get_status(cancelled.id)).status == "cancelled"
    assert (await svc.get_status(chatty.id)).status == "running"


async def test_retention_deletes_old_finished_tasks_in_batches_and_keeps_daily_totals(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = service(db, clock, metrics)
    for i in range(5):
        t = await svc.create_tracking(title=f"ok {i}")
        await svc.start(t.id)
        clock.advance(10 * (i + 1))
        await svc.complete(t.id)
    failed = await svc.create_tracking(title="bad")
    await svc.start(failed.id)
    await svc.fail(failed.id, "boom")
    needed = await svc.create_tracking(title="needed")
    await svc.start(needed.id)
    await svc.complete(needed.id)
    waiting = await svc.create_tracking(title="waits", depends_on=[needed.id])
    clock.advance(days=31)
    recent = await svc.create_tracking(title="recent")
    await svc.start(recent.id)
    await svc.complete(recent.id)

    result = await svc.cleanup(30, batch_size=2)

    assert (result.deleted, result.kept_for_dependents) == (6, 1)
    assert result.batches == 3
    left = {t.title for t in await svc.crud.get_page(db)}
    assert left == {"needed", "waits", "recent"}
    rows = (await db.execute(select(AGGREGATES).order_by(AGGREGATES.c.status))).all()
    day = date(2026, 3, 2)
    assert [
        (r.tenant_id, r.domain, r.day, r.status, r.task_count, r.attempts_total) for r in rows
    ] == [
        ("default", "report", day, "completed", 5, 5),
        ("default", "report", day, "failed", 1, 1),
    ]
    completed = rows[0]
    assert completed.duration_count == 5
    assert completed.duration_seconds_total == pytest.approx(150.0)
    assert completed.duration_seconds_max == pytest.approx(50.0)
    assert (await svc.get_status(waiting.id)).status == "pending"

    # Nothing more is old enough; the aggregates add up over runs.
    assert (await svc.cleanup()).deleted == 0
    clock.advance(days=31)
    await svc.start(waiting.id)
    await svc.complete(waiting.id)
    clock.advance(days=31)
    assert (await svc.cleanup()).deleted == 3
    total = (
        await db.execute(select(AGGREGATES.c.task_count).where(AGGREGATES.c.status == "completed"))
    ).scalars()
    assert sum(total) == 8


async def test_retention_needs_the_aggregates_table(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    with pytest.raises(ConfigError, match="task_tracking_aggregates"):
        await BaseTaskTrackingService(db, LonelyTracking, clock=clock, metrics=metrics).cleanup()


async def test_crud_pages_by_status_and_lists_active_tasks(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    svc = BaseTaskTrackingService(db, InvoiceTracking, clock=clock, metrics=metrics)
    ids = [(await svc.create_tracking(customer=f"c{i}")).id for i in range(5)]
    await svc.start(ids[0])
    await svc.start(ids[1])
    await svc.complete(ids[1])
    crud = BaseTaskTrackingCRUD(InvoiceTracking)

    assert [t.id for t in await crud.get_by_status(db, "PENDING", skip=1, limit=2)] == ids[3:5]
    assert [t.id for t in await crud.get_by_status(db, "PROCESSING")] == [ids[0]]
    assert [t.id for t in await crud.get_by_status(db, "SUCCESS")] == [ids[1]]
    assert [t.id for t in await crud.get_active_tasks(db)] == [ids[0], *ids[2:]]
    assert [t.id for t in await crud.get_active_tasks(db, skip=3, limit=10)] == [ids[4]]
    assert await crud.count_by_status(db) == {"pending": 3, "running": 1, "completed": 1}
    assert await crud.count(db, status="pending") == 3
    assert await BaseTaskTrackingCRUD(InvoiceTracking, "globex").get_active_tasks(db) == []
    with pytest.raises(ValueError, match="limit is from 1 to 1000"):
        await crud.get_by_status(db, "pending", limit=0)


async def test_a_publisher_that_fails_does_not_undo_the_change(
    db: AsyncSession, clock: Clock, metrics: JobMetrics
) -> None:
    class Down:
        async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
            raise ConnectionError("bus away")

    svc = service(db, clock, metrics, publisher=Down())
    task = await svc.create_tracking(title="x")
    await svc.start(task.id)

    assert (await svc.get_status(task.id)).status == "running"
    lost = metrics.registry.get_sample_value(
        "trackd_job_event_publish_failures_total", {"task": "report"}
    )
    assert lost == 2.0


def test_times_in_the_example_of_this_file_are_utc() -> None:
    assert Clock().now.tzinfo is UTC
