"""The ingest consumer end to end: MemoryBus → IngestConsumer → the store, on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from soorma_common.events import ActionRequestEvent, ActionResultEvent, BusinessFactEvent
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from trackd.bus.memory import MemoryBus
from trackd.domain.plans import PlanStatus
from trackd.domain.states import TaskState
from trackd.ingest.consumer import IngestConsumer, IngestOptions, IngestStats
from trackd.reads.service import agent_metrics, plan_timeline
from trackd.store.models import AgentMetricBucket, DeadLetter, StateTransition, TimelineEvent
from trackd.store.repos import anomalies, dead_letters, plans, tasks
from trackd.testing import EventFactory

Sessions = async_sessionmaker[AsyncSession]
Msg = tuple[str, bytes]  # (topic, body) as it goes on the bus

# Attempt 1 fails at 10:59:20 and attempt 2 completes at 11:00:30: the failure's metrics
# bucket and the completion's are different hours, so a take-back has to cross buckets.
T0 = datetime(2026, 1, 11, 10, 59, 0, tzinfo=UTC)
TENANT = "acme"
SYSTEM = "system-events"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def factory(tenant: str = TENANT, *, trace_id: str | None = "trace-1") -> EventFactory:
    return EventFactory(source="planner", tenant_id=tenant, trace_id=trace_id, now=T0)


def msg(raw: dict[str, Any]) -> Msg:
    return raw["topic"], json.dumps(raw).encode()


def workflow(tenant: str = TENANT) -> list[dict[str, Any]]:
    """A plan with one task: attempt 1 fails, attempt 2 completes."""
    f = factory(tenant)
    task = "task-1"
    failed = f.result(
        task,
        "web.search.completed",
        success=False,
        error="timeout",
        source="worker-a",
        parent="r1",
        event_id="f1",
        time=at(20),
    )
    failed["correlationId"] = failed.pop("correlation_id")  # producers spell it this way too
    return [
        f.plan_started(
            "plan-1",
            current_state="searching",
            event_id="ps",
            time=at(0),
            data={"goal": "find moths"},
        ),
        f.request(
            task,
            "web.search.requested",
            plan_id="plan-1",
            parent="ps",
            event_id="r1",
            time=at(1),
            data={"query": "moths"},
        ),
        f.progress(
            task,
            "running",
            0.4,
            "page 2",
            source="worker-a",
            parent="r1",
            event_id="p1",
            time=at(5),
        ),
        failed,
        f.state_changed(
            task,
            "failed",
            "running",
            "retrying",
            source="worker-b",
            attempt=2,
            parent="r1",
            event_id="s2",
            time=at(40),
        ),
        f.progress(
            task,
            "IN_PROGRESS",
            0.8,
            source="worker-b",
            attempt=2,
            parent="s2",
            event_id="p2",
            time=at(70),
        ),
        f.result(
            task,
            "web.search.completed",
            source="worker-b",
            attempt=2,
            parent="r1",
            event_id="c2",
            time=at(90),
            data={"hits": 3},
        ),
        f.plan_completed("plan-1", current_state="done", event_id="pc", time=at(95)),
    ]


EVENT_IDS = ["ps", "r1", "p1", "f1", "s2", "p2", "c2", "pc"]


async def deliver(
    bus: MemoryBus,
    sessions: Sessions,
    messages: Sequence[Msg],
    *,
    batch_size: int = 1000,
    default_tenant: str = "default",
) -> IngestStats:
    """Publish messages in this order and consume them with a burst consumer."""
    publishers = [asyncio.create_task(bus.publish(topic, [body])) for topic, body in messages]
    await asyncio.sleep(0)  # every publish has queued its message, in order
    consumer = IngestConsumer(
        bus,
        sessions,
        IngestOptions(default_tenant=default_tenant, batch_size=batch_size, idle_wait=0.1),
    )
    stats = await consumer.run(burst=True)
    async with asyncio.timeout(5):  # each publish returns once its message is committed
        await asyncio.gather(*publishers)
    return stats


async def count(sessions: Sessions, model: Any, tenant: str = TENANT) -> int:
    async with sessions() as s:
        value = await s.scalar(
            select(func.count()).select_from(model).where(model.tenant_id == tenant)
        )
    return int(value or 0)


async def snapshot(sessions: Sessions, tenant: str) -> dict[str, Any]:
    """Everything the workflow leaves behind that must not depend on delivery order."""
    async with sessions() as s:
        record = await tasks.get(s, tenant, "task-1")
        plan = await plans.get(s, tenant, "plan-1")
        rows = await s.scalars(select(TimelineEvent).where(TimelineEvent.tenant_id == tenant))
        timeline = sorted(
            (r.event_id, r.event_type, r.occurred_at, r.plan_id, r.task_id) for r in rows
        )
        buckets = await s.scalars(
            select(AgentMetricBucket).where(AgentMetricBucket.tenant_id == tenant)
        )
        counted = sorted(
            (
                b.agent_id,
                b.period_start,
                b.total_tasks,
                b.completed_tasks,
                b.failed_tasks,
                b.cancelled_tasks,
                b.duration_count,
                round(b.duration_sum, 6),
            )
            for b in buckets
            if b.total_tasks or b.duration_count
        )
        refused = await anomalies.for_task(s, tenant, "task-1")
    assert record is not None and plan is not None
    return {
        "task": dataclasses.replace(record, tenant_id="*"),
        "plan": dataclasses.replace(plan, tenant_id="*"),
        "timeline": timeline,
        "buckets": counted,
        "anomalies": len(refused),
    }


async def assert_workflow_stored(sessions: Sessions, tenant: str = TENANT) -> None:
    async with sessions() as s:
        record = await tasks.get(s, tenant, "task-1")
        plan = await plans.get(s, tenant, "plan-1")
        transitions = await tasks.transitions_of(s, tenant, "task-1")
        counts = await tasks.plan_counts(s, tenant, "plan-1")
        refused = await anomalies.for_task(s, tenant, "task-1")
        metrics = await agent_metrics(s, tenant, None, "24h", now=at(3600))
        per_agent = {
            agent: (await agent_metrics(s, tenant, agent, "24h", now=at(3600))).metrics
            for agent in ("worker-a", "worker-b")
        }
        timeline = list(
            await s.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.tenant_id == tenant)
                .order_by(TimelineEvent.occurred_at)
            )
        )

    assert record is not None
    assert (record.state, record.attempt, record.progress, record.error) == (
        TaskState.COMPLETED,
        2,
        1.0,
        None,
    )
    assert (record.started_at, record.completed_at) == (at(1), at(90))
    assert (record.first_seen_at, record.last_event_at) == (at(1), at(90))
    assert record.duration_seconds == 89.0
    assert (record.event_type, record.requester, record.agent_id) == (
        "web.search.requested",
        "planner",
        "worker-b",
    )
    assert (record.plan_id, record.trace_id, record.parent_event_id) == ("plan-1", "trace-1", "ps")
    assert record.data == {"query": "moths"}
    assert record.result == {"success": True, "hits": 3}
    assert record.message is None  # attempt 2 said nothing; attempt 1's message is not kept

    assert [
        (t.event_id, t.from_state, t.to_state, t.attempt, t.reason, t.transitioned_at)
        for t in transitions
    ] == [
        ("r1", None, "running", 1, None, at(1)),
        ("f1", "running", "failed", 1, "timeout", at(20)),
        ("s2", "failed", "running", 2, "retrying", at(40)),
        ("c2", "running", "completed", 2, None, at(90)),
    ]
    assert refused == []

    assert plan is not None
    assert (plan.status, plan.started_at, plan.completed_at) == (
        PlanStatus.COMPLETED,
        at(0),
        at(95),
    )
    assert (plan.current_state, plan.trace_id, plan.goal) == ("done", "trace-1", "find moths")
    assert (counts["task_count"], counts["completed_tasks"], counts["failed_tasks"]) == (1, 1, 0)

    assert [r.event_id for r in timeline] == EVENT_IDS
    assert {r.plan_id for r in timeline} == {"plan-1"}
    assert [r.task_id for r in timeline] == [None, *["task-1"] * 6, None]
    by_id = {r.event_id: r for r in timeline}
    assert by_id["r1"].correlation_id == "task-1"
    assert by_id["f1"].correlation_id == "task-1"  # sent as camelCase correlationId
    assert by_id["s2"].attributes["attempt"] == 2
    assert by_id["p1"].data == {
        "task_id": "task-1",
        "state": "running",
        "progress": 0.4,
        "message": "page 2",
    }

    # One logical task: the failed first attempt is not counted next to the success.
    m = metrics.metrics
    assert (m.total_tasks, m.completed_tasks, m.failed_tasks) == (1, 1, 0)
    assert (m.avg_duration_seconds, m.success_rate) == (89.0, 1.0)
    assert metrics.as_of == at(90)
    assert per_agent["worker-a"].total_tasks == 0
    assert (per_agent["worker-b"].total_tasks, per_agent["worker-b"].completed_tasks) == (1, 1)


# --- the workflow -----------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
async def test_a_retried_workflow_is_stored_and_counted_once(
    sessions: Sessions, batch_size: int
) -> None:
    bus = MemoryBus()
    stats = await deliver(bus, sessions, [msg(e) for e in workflow()], batch_size=batch_size)

    assert (stats.folded, stats.duplicates, stats.rejected, stats.failures) == (8, 0, 0, 0)
    assert stats.batches == -(-8 // batch_size)
    assert bus.backlog() == 0
    await assert_workflow_stored(sessions)
    assert await count(sessions, DeadLetter) == 0


async def test_a_failure_committed_first_is_taken_back_by_the_retry(sessions: Sessions) -> None:
    bus = MemoryBus()
    events = [msg(e) for e in workflow()]
    await deliver(bus, sessions, events[:4])  # up to the failure of attempt 1

    async with sessions() as s:
        failed = await agent_metrics(s, TENANT, None, "24h", now=at(3600))
        record = await tasks.get(s, TENANT, "task-1")
    assert record is not None and record.state is TaskState.FAILED
    assert (failed.metrics.total_tasks, failed.metrics.failed_tasks) == (1, 1)
    assert failed.as_of == at(20)

    await deliver(bus, sessions, events[4:])
    await assert_workflow_stored(sessions)
    async with sessions() as s:
        rows = list(
            await s.scalars(select(AgentMetricBucket).order_by(AgentMetricBucket.period_start))
        )
    # The failure's bucket is emptied, not left counting a task that was retried.
    assert [
        (r.agent_id, r.period_start.hour, r.total_tasks, r.failed_tasks, r.completed_tasks)
        for r in rows
    ] == [("worker-a", 10, 0, 0, 0), ("worker-b", 11, 1, 0, 1)]
    assert rows[0].last_event_at == at(20)


# --- duplicates and order ---------------------------------------------------------------------


async def test_a_duplicate_in_one_batch_is_stored_once(sessions: Sessions) -> None:
    events = [msg(e) for e in workflow()]
    again = [events[1], events[6]]  # the request and the final result, each twice
    other_tenant = msg(workflow("globex")[1])  # the same id in another tenant is not a duplicate

    stats = await deliver(MemoryBus(), sessions, [*events, *again, other_tenant])

    assert stats.batches == 1
    assert (stats.folded, stats.duplicates) == (9, 2)
    await assert_workflow_stored(sessions)
    assert await count(sessions, TimelineEvent) == 8
    assert await count(sessions, StateTransition) == 4
    assert await count(sessions, TimelineEvent, "globex") == 1
    async with sessions() as s:
        assert await tasks.get(s, "globex", "task-1") is not None


@pytest.mark.parametrize("batch_size", [1, 1000])
async def test_a_duplicate_across_batches_is_stored_once(
    sessions: Sessions, batch_size: int
) -> None:
    bus = MemoryBus()
    events = [msg(e) for e in workflow()]
    await deliver(bus, sessions, events, batch_size=batch_size)
    before = await snapshot(sessions, TENANT)

    # At-least-once delivery: the whole stream again, and then a stale copy of one event.
    stats = await deliver(bus, sessions, [*events, events[3]], batch_size=batch_size)

    assert (stats.folded, stats.duplicates, stats.rejected) == (0, 9, 0)
    assert await snapshot(sessions, TENANT) == before
    await assert_workflow_stored(sessions)
    assert await count(sessions, TimelineEvent) == 8
    assert await count(sessions, StateTransition) == 4


def _orders() -> Iterator[tuple[str, list[int]]]:
    indexes = list(range(8))
    yield "reversed", indexes[::-1]
    yield "results-first", [6, 3, 7, 5, 4, 2, 1, 0]
    for seed in range(4):
        shuffled = indexes[:]
        random.Random(seed).shuffle(shuffled)
        yield f"shuffled-{seed}", shuffled


async def test_out_of_order_delivery_gives_the_ordered_records(sessions: Sessions) -> None:
    bus = MemoryBus()
    await deliver(bus, sessions, [msg(e) for e in workflow("ordered")], batch_size=1)
    expected = await snapshot(sessions, "ordered")
    assert expected["buckets"] == [
        ("worker-b", at(60).replace(minute=0, second=0), 1, 1, 0, 0, 1, 89.0)
    ]

    for name, order in _orders():
        events = workflow(name)
        # One event per batch, so the store sees exactly this arrival order.
        stats = await deliver(bus, sessions, [msg(events[i]) for i in order], batch_size=1)
        assert (stats.folded, stats.batches) == (8, 8), name
        assert await snapshot(sessions, name) == expected, name
        # And with a duplicate of every event, delivered in reverse on top.
        await deliver(bus, sessions, [msg(e) for e in reversed(events)], batch_size=3)
        assert await snapshot(sessions, name) == expected, name


# --- malformed events -------------------------------------------------------------------------


async def test_malformed_events_go_to_dead_letters_and_the_rest_is_stored(
    sessions: Sessions,
) -> None:
    f = factory()
    naive = f.progress("task-1", "running", event_id="bad-time", time="2026-01-11T10:59:03")
    too_far = f.progress("task-1", "running", 1.5, event_id="bad-progress", time=at(4))
    unknown = f.state_changed("task-1", None, "exploded", event_id="bad-state", time=at(6))
    bad = [(SYSTEM, b'{"id": "bad-json", "source": '), msg(naive), msg(too_far), msg(unknown)]
    good = [msg(e) for e in workflow()]
    mixed = [*good[:3], *bad, *good[3:]]

    stats = await deliver(MemoryBus(), sessions, mixed)

    assert (stats.batches, stats.folded, stats.rejected, stats.failures) == (1, 8, 4, 0)
    await assert_workflow_stored(sessions)
    assert await count(sessions, TimelineEvent) == 8

    async with sessions() as s:
        letters = {d.event_id: d for d in await dead_letters.recent(s, TENANT)}
        unattributed = await dead_letters.recent(s, "default")
    assert set(letters) == {"bad-time", "bad-progress", "bad-state"}
    assert "time must carry a time zone" in letters["bad-time"].reason
    assert "progress" in letters["bad-progress"].reason
    assert "less than or equal to 1" in letters["bad-progress"].reason
    assert "unknown task state 'exploded'" in letters["bad-state"].reason
    assert letters["bad-state"].payload == msg(unknown)[1].decode()
    assert {d.topic for d in letters.values()} == {SYSTEM}
    assert all(d.message_id for d in letters.values())
    # Unreadable JSON names no tenant: it is kept under the default tenant.
    (broken,) = unattributed
    assert "not valid JSON" in broken.reason
    assert broken.payload == '{"id": "bad-json", "source": '
    assert broken.event_id is None


async def test_an_unknown_type_goes_to_the_timeline_only(sessions: Sessions) -> None:
    note = factory().event(
        "agent.thought", topic=SYSTEM, payload={"text": "hmm"}, event_id="note", time=at(2)
    )
    stats = await deliver(MemoryBus(), sessions, [msg(note)])

    assert (stats.folded, stats.rejected) == (1, 0)
    assert await count(sessions, TimelineEvent) == 1
    assert await count(sessions, DeadLetter) == 0
    async with sessions() as s:
        assert await tasks.plan_counts(s, TENANT, "plan-1") == {
            "task_count": 0,
            "completed_tasks": 0,
            "failed_tasks": 0,
            "last_event_at": None,
            "first_seen_at": None,
        }


# --- failures, durability and transactions ----------------------------------------------------


class _FlakySessions(async_sessionmaker[AsyncSession]):
    """Sessions whose first `failures` opens raise, as when the database is briefly away."""

    failures = 0

    def __call__(self, **kw: Any) -> AsyncSession:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("database is away")
        return super().__call__(**kw)


@contextmanager
def failing_commits(times: int) -> Iterator[tuple[type[Session], list[str]]]:
    """A session class whose first `times` commits fail after the batch was written."""

    class FlakySession(Session):
        pass

    outcomes: list[str] = []

    def before_commit(session: Session) -> None:
        if len(outcomes) < times:
            outcomes.append("failed")
            raise ConnectionResetError("connection lost during commit")
        outcomes.append("committed")

    event.listen(FlakySession, "before_commit", before_commit)
    try:
        yield FlakySession, outcomes
    finally:
        event.remove(FlakySession, "before_commit", before_commit)


async def test_a_batch_whose_commit_fails_is_retried_and_nothing_is_lost(
    engine: AsyncEngine,
) -> None:
    with failing_commits(2) as (session_class, outcomes):
        sessions = async_sessionmaker(
            engine, sync_session_class=session_class, expire_on_commit=False
        )
        stats = await deliver(MemoryBus(), sessions, [msg(e) for e in workflow()])

    assert outcomes == ["failed", "failed", "committed"]
    # The failed attempts were rolled back whole: the retry found no duplicates.
    assert (stats.failures, stats.batches, stats.folded, stats.duplicates) == (2, 1, 8, 0)
    await assert_workflow_stored(sessions)
    assert await count(sessions, TimelineEvent) == 8
    assert await count(sessions, StateTransition) == 4


async def test_a_batch_is_retried_while_the_database_is_away(engine: AsyncEngine) -> None:
    sessions = _FlakySessions(engine, expire_on_commit=False)
    sessions.failures = 2

    stats = await deliver(MemoryBus(), sessions, [msg(e) for e in workflow()])

    assert (stats.failures, stats.batches, stats.folded) == (2, 1, 8)
    await assert_workflow_stored(sessions)


async def test_publish_returns_once_the_events_are_committed(engine: AsyncEngine) -> None:
    class WatchedSession(Session):
        pass

    bus = MemoryBus()
    sessions = async_sessionmaker(engine, sync_session_class=WatchedSession, expire_on_commit=False)
    consumer = IngestConsumer(bus, sessions, IngestOptions(default_tenant=TENANT, idle_wait=0.05))
    running = asyncio.create_task(consumer.run())
    publisher_done_at_commit: list[bool] = []
    try:
        for raw in workflow():
            publisher = asyncio.create_task(bus.publish(raw["topic"], [msg(raw)[1]]))

            def after_commit(_: Session, publisher: asyncio.Task[None] = publisher) -> None:
                publisher_done_at_commit.append(publisher.done())

            event.listen(WatchedSession, "after_commit", after_commit)
            try:
                await publisher
            finally:
                event.remove(WatchedSession, "after_commit", after_commit)
            # Readable the moment publish returns: no sleeping, no draining.
            async with sessions() as s:
                assert raw["id"] in {r.event_id for r in await s.scalars(select(TimelineEvent))}
                if raw["id"] == "r1":
                    record = await tasks.get(s, TENANT, "task-1")
                    assert record is not None and record.state is TaskState.RUNNING
    finally:
        consumer.stop()
        await running

    assert publisher_done_at_commit == [False] * 8
    assert consumer.stats.batches == 8
    await assert_workflow_stored(sessions)


@pytest.mark.parametrize(("batch_size", "batches"), [(4, 3), (10, 1), (1000, 1), (1, 10)])
async def test_one_transaction_per_batch(
    engine: AsyncEngine, sessions: Sessions, batch_size: int, batches: int
) -> None:
    f = factory()
    events = [
        msg(f.request(f"task-{i}", "web.search.requested", event_id=f"e-{i}", time=at(i)))
        for i in range(10)
    ]
    commits: list[object] = []

    def on_commit(connection: object) -> None:
        commits.append(connection)

    event.listen(engine.sync_engine, "commit", on_commit)
    try:
        stats = await deliver(MemoryBus(), sessions, events, batch_size=batch_size)
    finally:
        event.remove(engine.sync_engine, "commit", on_commit)

    assert stats.batches == batches
    assert len(commits) == batches
    assert stats.folded == 10
    assert await count(sessions, TimelineEvent) == 10


@pytest.mark.parametrize("batch_size", [1, 1000])
async def test_events_before_the_request_join_the_plan_timeline(
    sessions: Sessions, batch_size: int
) -> None:
    # No trace ids: only the task ties the worker's early events to the plan.
    f = factory(trace_id=None)
    early = [
        f.progress("task-1", "running", 0.5, source="worker-a", event_id="w1", time=at(2)),
        f.result("task-1", "web.search.completed", source="worker-a", event_id="w2", time=at(3)),
    ]
    request = f.request(
        "task-1", "web.search.requested", plan_id="plan-1", event_id="r1", time=at(1)
    )
    await deliver(MemoryBus(), sessions, [msg(e) for e in [*early, request]], batch_size=batch_size)

    async with sessions() as s:
        view = await plan_timeline(s, TENANT, "plan-1")
        record = await tasks.get(s, TENANT, "task-1")
    assert record is not None and record.plan_id == "plan-1"
    assert [e.event_id for e in view.events] == ["r1", "w1", "w2"]
    assert [e.plan_id for e in view.events] == ["plan-1"] * 3
    assert view.as_of == at(3)


@contextmanager
def unstorable(event_id: str, engine: AsyncEngine) -> Iterator[None]:
    """The store refuses any timeline insert carrying `event_id`, as it would a value it
    cannot hold; the refusal is the data's fault, not a connection problem."""

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "event_timeline" in statement and statement.lstrip().upper().startswith("INSERT"):
            if event_id in repr(params):
                raise ValueError(f"value of event {event_id} cannot be stored")

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def test_an_event_the_store_refuses_is_dead_lettered_and_the_batch_goes_on(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    f = factory()
    poison = f.progress("task-9", "running", progress=0.5, event_id="poison-1", time=at(5))
    messages = [msg(e) for e in workflow()]
    messages.insert(3, msg(poison))

    with unstorable("poison-1", engine):
        stats = await deliver(MemoryBus(), sessions, messages)

    # Every other event of the batch is stored; the refused one waits in the dead letters.
    await assert_workflow_stored(sessions)
    assert await count(sessions, TimelineEvent) == 8
    assert (stats.folded, stats.rejected) == (8, 1)
    async with sessions() as s:
        letters = await dead_letters.recent(s, TENANT)
        assert await tasks.get(s, TENANT, "task-9") is None
    assert [(d.event_id, d.topic) for d in letters] == [("poison-1", SYSTEM)]
    assert letters[0].reason.startswith("could not be stored:")
    assert "poison-1" in letters[0].payload


# --- issue 9: the platform's own client on the bus, and task ownership at ingest ---------------


async def test_the_platforms_action_result_and_goal_fold_through_the_bus(
    sessions: Sessions,
) -> None:
    goal = BusinessFactEvent(
        id="goal-1",
        source="user-agent",
        type="research.goal",
        time=at(0),
        trace_id="trace-p",
        tenant_id=TENANT,
        data={"goal": "find moths"},
    )
    request = ActionRequestEvent(
        id="req-1",
        source="planner",
        type="web.search.requested",
        time=at(1),
        correlation_id="task-p",
        trace_id="trace-p",
        parent_event_id="goal-1",
        plan_id="plan-p",
        tenant_id=TENANT,
    )
    failed = ActionResultEvent(
        id="res-1",
        source="worker-1",
        type="web.search.failed",
        time=at(2),
        correlation_id="task-p",
        trace_id="trace-p",
        parent_event_id="req-1",
        tenant_id=TENANT,
        action_event_id="req-1",
        success=False,
        error="quota exceeded",
    )
    messages = [
        (str(e.topic.value), e.model_dump_json(by_alias=True).encode())
        for e in (goal, request, failed)
    ]

    stats = await deliver(MemoryBus(), sessions, messages)

    assert (stats.folded, stats.rejected) == (3, 0)
    async with sessions() as s:
        record = await tasks.get(s, TENANT, "task-p")
        view = await plan_timeline(s, TENANT, "plan-p")
    assert record is not None
    assert (record.state, record.error) == (TaskState.FAILED, "quota exceeded")
    assert [n.event_id for n in view.tree] == ["goal-1"]  # the goal roots the trace
    assert [e.event_id for e in view.events] == ["goal-1", "req-1", "res-1"]


async def test_of_two_users_racing_to_start_a_task_the_first_folded_owns_it(
    sessions: Sessions,
) -> None:
    f = factory()
    ann = f.request("task-r", "x", event_id="ann-1") | {"published_by": "ann"}
    f.advance(1)
    bob = f.result("task-r", "x.done", success=False, event_id="bob-1") | {"published_by": "bob"}
    f.advance(1)
    service = f.progress("task-r", "running", 0.5, event_id="svc-1")

    stats = await deliver(MemoryBus(), sessions, [msg(ann), msg(bob), msg(service)])

    assert (stats.folded, stats.rejected) == (2, 1)
    async with sessions() as s:
        record = await tasks.get(s, TENANT, "task-r")
        [letter] = await dead_letters.recent(s, TENANT)
    assert record is not None
    assert (record.state, record.progress, record.owner_user_id) == (TaskState.RUNNING, 0.5, "ann")
    assert letter.event_id == "bob-1"
    assert letter.reason.startswith("forbidden: task 'task-r' belongs to another principal")
