"""The records ingest stores do not depend on how the stream is cut into batches: random
streams (failures, retries, duplicates, late deliveries) written one event per transaction and
written in large batches give the same rows, on both backends."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.base import Message
from trackd.ingest.batch import apply_batch
from trackd.store.models import (
    AgentMetricBucket,
    AnomalyRow,
    Plan,
    StateTransition,
    TaskExecution,
    TimelineEvent,
    table_of,
)

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 3, 1, 9, 58, tzinfo=UTC)
# Columns each write stamps for itself (row ids, write times): everything else must match.
WRITE_STAMPS = {"id", "tenant_id", "created_at", "updated_at", "received_at", "detected_at"}
TABLES = [TaskExecution, Plan, TimelineEvent, AgentMetricBucket, AnomalyRow]


def _task_events(
    rnd: random.Random, task: int, start: datetime, final: dict[str, str]
) -> list[dict[str, Any]]:
    task_id = f"task-{task}"
    plan = f"plan-{task % 3}"
    at = start
    events: list[dict[str, Any]] = []

    def add(event_type: str, topic: str, data: dict[str, Any], **extra: Any) -> None:
        nonlocal at
        at += timedelta(seconds=rnd.randint(1, 90))
        events.append(
            {
                "id": f"{task_id}-{len(events)}",
                "source": f"worker-{task % 4}",
                "type": event_type,
                "topic": topic,
                "time": at.isoformat(),
                "trace_id": f"trace-{plan}",
                "data": data,
                **extra,
            }
        )

    add(
        "work.requested",
        "action-requests",
        {"input": task},
        correlation_id=task_id,
        plan_id=plan if rnd.random() < 0.7 else None,
    )
    state = {"task_id": task_id, "previous_state": "pending", "new_state": "running"}
    add("task.state_changed", "system-events", state)
    for step in range(rnd.randint(0, 4)):
        progress = {"task_id": task_id, "state": "running", "progress": (step + 1) / 5}
        add("task.progress", "system-events", progress)
    outcome = rnd.random()
    final[task_id] = "failed" if outcome < 0.25 else "completed" if outcome < 0.9 else "running"
    if outcome < 0.25:
        failed = {"success": False, "error": "timeout"}
        add("work.completed", "action-results", failed, correlation_id=task_id)
    elif outcome < 0.9:
        done = {"success": True, "rows": task}
        add("work.completed", "action-results", done, correlation_id=task_id)
    return events


def random_stream(seed: int, tasks: int = 40) -> tuple[list[Message], dict[str, str]]:
    """Tasks interleaved by time, some events swapped with a neighbour or repeated later; and
    the state each task ends in."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    final: dict[str, str] = {}
    for task in range(tasks):
        events.extend(_task_events(rnd, task, T0 + timedelta(seconds=7 * task), final))
    events.sort(key=lambda e: e["time"])
    for i in rnd.sample(range(len(events) - 4), k=len(events) // 8):
        j = i + rnd.randint(1, 4)
        events[i], events[j] = events[j], events[i]
    for i in sorted(rnd.sample(range(len(events)), k=len(events) // 20), reverse=True):
        events.insert(min(len(events), i + rnd.randint(1, 30)), events[i])
    stream = [
        Message(id=str(n), topic=e["topic"], body=json.dumps(e).encode())
        for n, e in enumerate(events)
    ]
    return stream, final


async def ingest(sessions: Sessions, tenant: str, stream: Sequence[Message], size: int) -> None:
    for start in range(0, len(stream), size):
        async with sessions() as session, session.begin():
            await apply_batch(session, stream[start : start + size], tenant)


async def stored(sessions: Sessions, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with sessions() as session:
        for model in TABLES:
            table: Table = table_of(model)
            columns = [c for c in table.c if c.name not in WRITE_STAMPS]
            rows = await session.execute(select(*columns).where(table.c.tenant_id == tenant))
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        # A transition is history: which event a task's first one is credited to depends on
        # the order the events were folded in (a batch folds each task's events in their own
        # order). The states each task went through do not.
        t = table_of(StateTransition)
        steps = await session.execute(
            select(t.c.task_id, t.c.to_state, t.c.attempt).where(t.c.tenant_id == tenant)
        )
        out["state_transitions"] = sorted(tuple(r) for r in steps)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_one_event_per_batch_and_large_batches_store_the_same_rows(
    sessions: Sessions, seed: int
) -> None:
    stream, final = random_stream(seed)
    await ingest(sessions, "one-by-one", stream, 1)
    await ingest(sessions, "batched", stream, 2500)
    await ingest(sessions, "uneven", stream, 37)

    expected = await stored(sessions, "one-by-one")
    assert len(expected["event_timeline"]) == len({m.body for m in stream})
    assert {r[0]: r[3] for r in expected["task_executions"]} == final
    assert expected["state_transitions"] and expected["agent_metrics"]
    assert await stored(sessions, "batched") == expected
    assert await stored(sessions, "uneven") == expected
