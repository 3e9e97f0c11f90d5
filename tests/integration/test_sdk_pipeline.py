"""The SDK end to end: tracked code → Tracker → MemoryBus → ingest → the store, read back.

Runs on SQLite and PostgreSQL (the `sessions` fixture). The memory bus returns from a publish
only once ingest has committed it, so after `aflush()` the store holds every event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.memory import MemoryBus
from trackd.domain.states import TaskState
from trackd.domain.timeline import TimelineNode
from trackd.ingest.consumer import IngestConsumer, IngestOptions, IngestStats
from trackd.reads.service import plan_tasks, plan_timeline
from trackd.sdk import TaskHandle, Tracker, current_task, tracked
from trackd.store.repos import anomalies, tasks

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"


@pytest_asyncio.fixture
async def pipeline(sessions: Sessions) -> AsyncIterator[tuple[Tracker, IngestStats]]:
    """A tracker publishing into a memory bus that an ingest consumer drains into the store."""
    bus = MemoryBus()
    consumer = IngestConsumer(bus, sessions, IngestOptions(default_tenant=TENANT, idle_wait=0.05))
    running = asyncio.create_task(consumer.run())
    try:
        async with Tracker(bus=bus, source="research-app", tenant_id=TENANT) as tracker:
            yield tracker, consumer.stats
    finally:
        consumer.stop()
        await running
        await bus.close()


def walk(nodes: list[TimelineNode], depth: int = 0) -> Iterator[tuple[int, TimelineNode]]:
    for node in nodes:
        yield depth, node
        yield from walk(node.children, depth + 1)


async def test_nested_tracked_calls_make_the_plan_timeline_a_tree(
    pipeline: tuple[Tracker, IngestStats], sessions: Sessions
) -> None:
    tracker, stats = pipeline
    started: dict[str, TaskHandle] = {}

    def note(name: str) -> TaskHandle:
        task = current_task()
        assert task is not None
        started[name] = task
        return task

    @tracked(tracker=tracker, name="web.search")
    async def search(query: str) -> int:
        note(f"search:{query}")
        await asyncio.sleep(0.01)
        return len(query)

    @tracked(tracker=tracker, name="analyze.text")
    def analyze() -> None:
        task = note("analyze")
        task.progress(0.3, "reading")
        task.progress(0.6, "summarizing")

    async with tracker.track("research.goal", plan_id="plan-1") as goal:
        started["goal"] = goal
        await asyncio.gather(search("moths"), search("bats"))
        analyze()
    await tracker.aflush()

    async with sessions() as s:
        view = await plan_timeline(s, TENANT, "plan-1")
        in_plan = {t.task_id for t in (await plan_tasks(s, TENANT, "plan-1")).tasks}
        records = {t.task_id: await tasks.get(s, TENANT, t.task_id) for t in started.values()}
        refused = [await anomalies.for_task(s, TENANT, t.task_id) for t in started.values()]

    assert (stats.rejected, stats.anomalies) == (0, 0)
    assert refused == [[], [], [], []]
    assert len(view.events) == 14  # four tasks, three state changes each, two progress events
    assert view.trace_id == goal.trace_id
    # One root, the goal's first event, and every event exactly once below it.
    assert [n.event_id for n in view.tree] == [goal.event_id]
    nodes = {n.event_id: (depth, n) for depth, n in walk(view.tree)}
    assert len(nodes) == 14
    task_of = {e.event_id: e.task_id for e in view.events}
    for name, task in started.items():
        depth, first = nodes[task.event_id]
        assert depth == (0 if name == "goal" else 1), name
        own = [c for c in first.children if task_of[c.event_id] == task.task_id]
        expected = 4 if name == "analyze" else 2  # running, completed (and the progress)
        assert len(own) == expected, name
        assert all(not c.children for c in own)
    subtasks = [c for c in nodes[goal.event_id][1].children if task_of[c.event_id] != goal.task_id]
    assert sorted(c.event_id for c in subtasks) == sorted(
        t.event_id for name, t in started.items() if name != "goal"
    )

    assert in_plan == {t.task_id for t in started.values()}
    for name, task in started.items():
        record = records[task.task_id]
        assert record is not None
        assert record.state is TaskState.COMPLETED, name
        assert record.duration_seconds is not None
        assert record.attempt == 1
        assert record.trace_id == goal.trace_id
        # A task's parent is the one its earliest event names (its later events hang under
        # that first event): none for the top-level task, the goal's first event for subtasks.
        assert record.parent_event_id == (None if name == "goal" else goal.event_id), name
        assert record.event_type == {
            "goal": "research.goal",
            "analyze": "analyze.text",
        }.get(name, "web.search")


async def test_retries_and_failures_are_stored_with_their_attempts_and_errors(
    pipeline: tuple[Tracker, IngestStats], sessions: Sessions
) -> None:
    tracker, stats = pipeline
    calls = 0
    handles: dict[str, str] = {}

    @tracked(tracker=tracker, name="flaky.fetch", max_attempts=3)
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        task = current_task()
        assert task is not None
        handles["flaky"] = task.task_id
        if calls < 2:
            raise ConnectionError("reset by peer")
        return "ok"

    @tracked(tracker=tracker, name="doomed")
    def doomed() -> None:
        task = current_task()
        assert task is not None
        handles["doomed"] = task.task_id
        raise ValueError("bad input")

    async with tracker.track("nightly", plan_id="plan-2"):
        assert await flaky() == "ok"
        try:
            doomed()
        except ValueError:
            pass
    await tracker.aflush()

    async with sessions() as s:
        retried = await tasks.get(s, TENANT, handles["flaky"])
        failed = await tasks.get(s, TENANT, handles["doomed"])
        transitions = await tasks.transitions_of(s, TENANT, handles["flaky"])
    assert (stats.rejected, stats.anomalies) == (0, 0)
    assert retried is not None and failed is not None
    assert (retried.state, retried.attempt, retried.max_attempts) == (TaskState.COMPLETED, 2, 3)
    assert [(t.attempt, t.to_state) for t in transitions] == [
        (1, TaskState.PENDING),
        (1, TaskState.RUNNING),
        (1, TaskState.FAILED),
        (2, TaskState.PENDING),
        (2, TaskState.RUNNING),
        (2, TaskState.COMPLETED),
    ]
    assert failed.state is TaskState.FAILED
    assert failed.error == "ValueError: bad input"
    assert failed.duration_seconds is not None
