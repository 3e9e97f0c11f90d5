"""`replay` rebuilds from the event timeline exactly what live ingest wrote, on both backends.

One realistic stream (plans of tasks with progress, retries across an hour boundary, failures,
a cancellation, two anomalies, duplicates) goes through MemoryBus + IngestConsumer with small
batches into two tenants: `ordered` receives it in time order, `shuffled` with events
swapped with their task's next one, stragglers delivered last, and duplicates. Then every
derived table is snapshotted (without row ids and wall-clock columns), replayed, and compared.

What is identical and what is not, and why:
- task_executions, plans, anomalies and agent_metrics (non-empty buckets) are identical for both
  tenants: the fold makes records depend on the set of events, not on their order (DESIGN §4).
  The anomaly tasks' events are delivered in order even in `shuffled`: which event of a
  conflicting pair is refused depends on which was applied first (see trackd.ingest.replay).
- A worker event that does not name its plan is replayed without one too (the test at the end):
  the timeline keeps the plan the producer named apart from the plan the task is in.
- Empty metric buckets (every count zero after a retry took a failure back) are left out: live
  ingest creates one whenever the failure and the retry were committed in different batches,
  replay only when they fall in different pages.
- state_transitions record the order events were applied in. Replay applies them in time order,
  so its history equals live ingest's exactly for `ordered`, and for the tasks of `shuffled`
  whose events arrived in order. For the tasks of `shuffled` that received events out of order,
  live ingest's history follows the arrival order (e.g. `completed` seen before the `running`
  it followed is one transition instead of two); there replay gives the history in-order
  delivery gives, i.e. `ordered`'s.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.memory import MemoryBus
from trackd.domain.access import Role
from trackd.domain.events import decode_envelope
from trackd.domain.interpret import interpret
from trackd.ingest.consumer import IngestConsumer, IngestOptions
from trackd.ingest.replay import replay
from trackd.store.models import (
    AgentMetricBucket,
    AnomalyRow,
    ApiToken,
    Base,
    DeadLetter,
    Plan,
    StateTransition,
    TaskExecution,
    TimelineEvent,
    table_of,
)
from trackd.store.repos import tasks, tokens
from trackd.testing import EventFactory

Sessions = async_sessionmaker[AsyncSession]
Event = dict[str, Any]

T0 = datetime(2026, 1, 11, 10, 58, 0, tzinfo=UTC)  # a retry fails at 10:59:41, completes 11:00:11
ORDERED, SHUFFLED = "ordered", "shuffled"
TASKS_PER_PLAN = 12
ANOMALY_TASKS = ("plan-0-t3", "plan-1-t6")
WALL_CLOCK = {"id", "created_at", "updated_at", "detected_at", "received_at"}
COUNTS = ("total_tasks", "completed_tasks", "failed_tasks", "cancelled_tasks", "duration_count")


def task_events(f: EventFactory, plan: str, i: int, start: datetime) -> list[Event]:
    """One task: request, running, three progress updates and an outcome.

    Every fifth task fails and is retried by another worker; some only fail; one is cancelled;
    two are anomalies (progress after completion; a retry after completion). Producers number
    their events (`sequence`, per attempt) in the order they happen.
    """
    task = f"{plan}-t{i}"
    worker, other = f"worker-{i % 3}", f"worker-{(i + 1) % 3}"

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    out = [
        f.request(task, "work.requested", source="planner", time=at(0), sequence=0, data={"n": i}),
        f.state_changed(task, "pending", "running", source=worker, time=at(1), sequence=1),
    ]
    for step in range(1, 4):
        out.append(
            f.progress(
                task,
                "running",
                step / 4,
                f"step {step}",
                source=worker,
                time=at(10 * step),
                sequence=1 + step,
            )
        )
    if i % 5 == 2:  # fails, then a retry by another worker completes
        out += [
            f.result(
                task,
                "work.done",
                success=False,
                error="timeout",
                source=worker,
                time=at(40),
                sequence=5,
            ),
            f.state_changed(
                task,
                "failed",
                "running",
                "retrying",
                source=other,
                attempt=2,
                time=at(50),
                sequence=1,
            ),
            f.progress(task, "IN_PROGRESS", 0.5, source=other, attempt=2, time=at(60), sequence=2),
            f.result(
                task,
                "work.done",
                source=other,
                attempt=2,
                time=at(70),
                sequence=3,
                data={"rows": i},
            ),
        ]
    elif i % 5 == 4:
        out.append(
            f.result(
                task,
                "work.done",
                success=False,
                error="boom",
                source=worker,
                time=at(40),
                sequence=5,
            )
        )
    elif i % 11 == 10:
        out.append(
            f.state_changed(
                task, "running", "cancelled", "user", source=worker, time=at(40), sequence=5
            )
        )
    else:
        out.append(
            f.result(task, "work.done", source=worker, time=at(40), sequence=5, data={"rows": i})
        )
    if task == ANOMALY_TASKS[0]:  # completed -> running within the attempt: refused
        out.append(f.progress(task, "running", 0.9, source=worker, time=at(45), sequence=9))
    if task == ANOMALY_TASKS[1]:  # a retry after completion: refused
        out.append(
            f.state_changed(task, "completed", "running", source=worker, attempt=2, time=at(50))
        )
    return out


def workload() -> list[Event]:
    """Two plans (one completed, one still running) of 12 tasks, in time order."""
    events: list[Event] = []
    for p in range(2):
        plan = f"plan-{p}"
        f = EventFactory(source="planner", plan_id=plan, trace_id=f"trace-{p}", id_prefix=plan)
        start = T0 + timedelta(seconds=30 * p)
        events.append(f.plan_started(plan, current_state="working", time=start, data={"goal": "x"}))
        for i in range(TASKS_PER_PLAN):
            events += task_events(f, plan, i, start + timedelta(seconds=1 + 15 * i))
        if p == 0:
            end = start + timedelta(seconds=15 * TASKS_PER_PLAN + 90)
            events.append(f.plan_completed(plan, current_state="done", time=end))
    return sorted(events, key=lambda e: (e["time"], e["id"]))


def task_of(event: Event) -> str | None:
    task = interpret(decode_envelope(event)).task
    return task.task_id if task else None


def straggler(e: Event) -> bool:
    data, task = e.get("data", {}), task_of(e)
    return (
        (task == "plan-0-t5" and e["type"] == "work.requested")
        or (task == "plan-1-t4" and data.get("message") == "step 2")
        or (task == "plan-1-t2" and data.get("error") == "timeout")
    )


def shuffle(events: Sequence[Event], rnd: random.Random) -> list[Event]:
    """Late delivery as a live system sees it: swapped events, stragglers, duplicates."""
    out = list(events)
    tasks = [task_of(e) for e in out]
    # One event in ten changes places with its task's next event (up to 12 events on).
    for i in rnd.sample(range(len(out)), k=len(out) // 10):
        if tasks[i] is None or tasks[i] in ANOMALY_TASKS:
            continue
        following = [j for j in range(i + 1, min(i + 13, len(out))) if tasks[j] == tasks[i]]
        if following:
            j = following[0]
            out[i], out[j] = out[j], out[i]
    # Three stragglers arrive after everything else: a task's request, a progress update, and
    # the failure of an attempt that was retried (live ingest never counts that failure; replay
    # counts it and takes it back).
    stragglers = [e for e in out if straggler(e)]
    assert len(stragglers) == 3
    out = [e for e in out if e not in stragglers] + stragglers
    for i in sorted(rnd.sample(range(len(out)), k=len(out) // 40), reverse=True):
        out.insert(min(len(out), i + rnd.randint(1, 30)), out[i])
    return out + out[:2]  # and two duplicates of long-stored events


def for_tenant(events: Sequence[Event], tenant: str) -> list[tuple[str, bytes]]:
    return [(e["topic"], json.dumps({**e, "tenant_id": tenant}).encode()) for e in events]


async def deliver(sessions: Sessions, messages: Sequence[tuple[str, bytes]]) -> None:
    """Publish in this order and consume in batches of 7, so late events cross batches."""
    bus = MemoryBus()
    publishers = [asyncio.create_task(bus.publish(topic, [body])) for topic, body in messages]
    await asyncio.sleep(0)
    consumer = IngestConsumer(bus, sessions, IngestOptions(batch_size=7, idle_wait=0.1))
    await consumer.run(burst=True)
    async with asyncio.timeout(5):
        await asyncio.gather(*publishers)


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return round(value, 6)  # bucket durations are sums of differences
    return value


async def rows_of(session: AsyncSession, model: type[Base]) -> list[dict[str, Any]]:
    """Every row of a table without its id and wall-clock columns, in a stable order."""
    table = table_of(model)
    columns = [c for c in table.c if c.name not in WALL_CLOCK]
    rows = [
        {c.name: _plain(v) for c, v in zip(columns, r, strict=True)}
        for r in await session.execute(select(*columns))
    ]
    return sorted(rows, key=lambda r: repr(sorted(r.items())))


async def snapshot(sessions: Sessions) -> dict[str, Any]:
    async with sessions() as s:
        buckets = await rows_of(s, AgentMetricBucket)
        return {
            "tasks": await rows_of(s, TaskExecution),
            "plans": await rows_of(s, Plan),
            "anomalies": await rows_of(s, AnomalyRow),
            "buckets": [b for b in buckets if any(b[c] for c in COUNTS) or b["duration_sum"]],
            "transitions": await rows_of(s, StateTransition),
        }


async def kept(sessions: Sessions) -> dict[str, Any]:
    """What replay must not touch, with every column."""
    async with sessions() as s:
        result = {}
        for model in (TimelineEvent, DeadLetter, ApiToken):
            rows = (await s.execute(select(table_of(model)))).all()
            result[model.__tablename__] = sorted((tuple(map(_plain, r)) for r in rows), key=repr)
        return result


def by_task(transitions: Sequence[dict[str, Any]], tenant: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for t in transitions:
        if t["tenant_id"] == tenant:
            out[t["task_id"]].append({k: v for k, v in t.items() if k != "tenant_id"})
    return out


def disordered_tasks(delivered: Sequence[Event]) -> set[str]:
    """Tasks whose events did not arrive in time order (first deliveries only)."""
    seen: set[str] = set()
    last: dict[str, tuple[str, str]] = {}
    out: set[str] = set()
    for e in delivered:
        task = task_of(e)
        if e["id"] in seen or task is None:
            continue
        seen.add(e["id"])
        if task in last and (e["time"], e["id"]) < last[task]:
            out.add(task)
        last[task] = max(last.get(task, (e["time"], e["id"])), (e["time"], e["id"]))
    return out


async def test_replay_rebuilds_what_live_ingest_wrote(sessions: Sessions) -> None:
    events = workload()
    shuffled = shuffle(events, random.Random(11))
    await deliver(sessions, for_tenant(events, ORDERED) + for_tenant(shuffled, SHUFFLED))
    await deliver(sessions, [("action-results", b'{"id": "broken"}')])  # a dead letter
    async with sessions() as s, s.begin():
        await tokens.create(s, ORDERED, user_id=None, role=Role.READER)
    live, before = await snapshot(sessions), await kept(sessions)
    assert len(live["tasks"]) == 2 * 2 * TASKS_PER_PLAN
    assert len(live["anomalies"]) == 2 * len(ANOMALY_TASKS)
    assert {p["status"] for p in live["plans"]} == {"completed", "running"}
    assert {b["period_start"].hour for b in live["buckets"]} == {10, 11}
    calls: list[tuple[int, int]] = []

    result = await replay(sessions, batch_size=50, progress=lambda *a: calls.append(a))

    rebuilt = await snapshot(sessions)
    for table in ("tasks", "plans", "anomalies", "buckets"):
        assert rebuilt[table] == live[table], table
    assert await kept(sessions) == before  # the timeline, dead letters and tokens are untouched

    live_ordered = by_task(live["transitions"], ORDERED)
    assert by_task(rebuilt["transitions"], ORDERED) == live_ordered
    disordered = disordered_tasks(shuffled)
    assert len(disordered) > 5  # the test does deliver out of order
    live_shuffled = by_task(live["transitions"], SHUFFLED)
    for task, history in by_task(rebuilt["transitions"], SHUFFLED).items():
        expected = live_ordered[task] if task in disordered else live_shuffled[task]
        assert history == expected, task

    timeline_size = len(before["event_timeline"])
    assert (result.events, result.rejected) == (timeline_size, 0)
    assert (result.tasks, result.plans, result.anomalies) == (48, 4, 4)
    assert result.transitions == len(rebuilt["transitions"])
    assert calls[0] == (0, timeline_size) and calls[-1] == (timeline_size, timeline_size)
    assert len(calls) == 1 + sum(-(-(timeline_size // 2) // 50) for _ in range(2))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    await replay(sessions, batch_size=5000)  # a second replay, in one page per tenant
    assert await snapshot(sessions) == rebuilt


async def test_replay_of_an_empty_store(sessions: Sessions) -> None:
    calls: list[tuple[int, int]] = []

    result = await replay(sessions, progress=lambda *a: calls.append(a))

    assert (result.events, result.tasks, result.plans) == (0, 0, 0)
    assert calls == [(0, 0)]
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(TaskExecution)) == 0


async def test_replay_of_worker_events_that_do_not_name_their_plan(sessions: Sessions) -> None:
    f = EventFactory(source="planner", tenant_id=ORDERED, now=T0)
    events = [
        f.plan_started("plan-9", time=T0),
        f.request("task-9", "work.requested", plan_id="plan-9", time=T0 + timedelta(seconds=1)),
        f.progress("task-9", "running", 0.5, source="w", time=T0 + timedelta(seconds=30)),
    ]
    await deliver(sessions, [(e["topic"], json.dumps(e).encode()) for e in events])
    live = await snapshot(sessions)

    await replay(sessions)

    assert (await snapshot(sessions))["plans"] == live["plans"]


async def test_replay_keeps_a_tasks_owner_and_an_action_results_envelope_outcome(
    sessions: Sessions,
) -> None:
    f = EventFactory(source="ann-laptop", tenant_id=ORDERED, now=T0)
    events = [
        f.request("task-o", "work.requested", time=T0) | {"published_by": "ann"},
        f.event("work.failed", topic="action-results", correlation_id="task-o", time=T0)
        | {"success": False, "error": "quota", "published_by": "ann", "data": None},
    ]
    await deliver(sessions, [(e["topic"], json.dumps(e).encode()) for e in events])

    await replay(sessions)

    async with sessions() as s:
        record = await tasks.get(s, ORDERED, "task-o")
    assert record is not None
    assert (record.owner_user_id, record.state, record.error) == ("ann", "failed", "quota")
