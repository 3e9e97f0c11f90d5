"""A plan's task counters (plan_task_counts) equal a count of its tasks, whatever the order,
the duplicates and the batching of the events that made them, on both backends.

Ingest keeps the counters from each task's old -> new record in the transaction that writes
the task; a plan's status reads them instead of counting. Each example writes under a
tenant of its own into one database, and compares the counters with a COUNT(*) GROUP BY of
the stored tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from trackd.bus.base import Message
from trackd.domain.plan_counts import STATES
from trackd.ingest.batch import apply_batch
from trackd.store.engine import create_engine, session_factory
from trackd.store.models import PlanTaskCount, TaskExecution, table_of
from trackd.store.repos import plan_counts
from trackd.testing import EventFactory

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PLANS = ("plan-a", "plan-b", None)
_tenants = itertools.count()


def _task_events(f: EventFactory, task: str, plan: str | None, steps: list[str]) -> list[Any]:
    """One task's events in the order they happened; the plan is named by the request or,
    when `late`, only by a later event."""
    late = "late" in steps
    request = f.request(task, "work.requested", plan_id=None if late else plan)
    out = [request]
    for step in steps:
        f.advance(1)
        if step == "run":
            out.append(f.state_changed(task, "pending", "running", plan_id=plan))
        elif step == "progress":
            out.append(f.progress(task, "running", 0.5, plan_id=plan))
        elif step == "complete":
            out.append(f.result(task, "work.completed", parent=request))
        elif step == "fail":
            out.append(f.result(task, "work.completed", success=False, error="boom"))
        elif step == "cancel":
            out.append(f.state_changed(task, "running", "cancelled", plan_id=plan))
        elif step == "retry":
            out.append(f.state_changed(task, "failed", "running", plan_id=plan, attempt=2))
        elif step == "wait":
            out.append(f.state_changed(task, "running", "waiting", plan_id=plan))
    return out


STEPS = st.lists(
    st.sampled_from(["run", "progress", "complete", "fail", "cancel", "retry", "wait", "late"]),
    max_size=5,
)
TASKS = st.lists(st.tuples(st.sampled_from(PLANS), STEPS), min_size=1, max_size=8)


async def _ingest(url: str, tenant: str, batches: list[list[Any]]) -> None:
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        for n, batch in enumerate(batches):
            messages = [
                Message(f"{n}-{i}", e["topic"], json.dumps(e).encode(), key=e.get("id"))
                for i, e in enumerate(batch)
            ]
            async with sessions() as s, s.begin():
                await apply_batch(s, messages, tenant)
    finally:
        await engine.dispose()


async def _counted(url: str, tenant: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The counters as stored, and the same figures counted from the tasks."""
    t, c = table_of(TaskExecution), table_of(PlanTaskCount)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            rows = await s.execute(
                select(
                    t.c.plan_id,
                    t.c.state,
                    func.count(),
                    func.min(t.c.first_seen_at),
                    func.max(t.c.last_event_at),
                )
                .where(t.c.tenant_id == tenant, t.c.plan_id.is_not(None))
                .group_by(t.c.plan_id, t.c.state)
            )
            want: dict[str, Any] = {}
            for plan, state, n, first, last in rows:
                entry = want.setdefault(plan, {"states": dict.fromkeys(STATES, 0)})
                entry["states"][state] = n
                entry["first"] = min(entry.get("first", first), first)
                entry["last"] = max(entry.get("last", last), last)
            stored = await s.execute(select(c).where(c.c.tenant_id == tenant))
            got = {
                r.plan_id: {
                    "states": {state: getattr(r, state) for state in STATES},
                    "first": r.first_seen_at,
                    "last": r.last_event_at,
                }
                for r in stored
            }
            return got, want
    finally:
        await engine.dispose()


@settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tasks=TASKS, data=st.data())
def test_counters_equal_a_count_of_the_tasks(
    database_url: str, tasks: list[tuple[str | None, list[str]]], data: st.DataObject
) -> None:
    tenant = f"counters-{next(_tenants)}"
    f = EventFactory(tenant_id=tenant, now=T0, id_prefix=tenant)
    events = [
        e for n, (plan, steps) in enumerate(tasks) for e in _task_events(f, f"t{n}", plan, steps)
    ]
    # Any arrival order, some events delivered again, in batches of any size.
    stream = data.draw(st.permutations(events), label="order")
    again = data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="again")
    stream = stream + again
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1))), label="cuts"))
    bounds = [0, *cuts, len(stream)]
    batches = [stream[a:b] for a, b in itertools.pairwise(bounds) if stream[a:b]]

    asyncio.run(_ingest(database_url, tenant, batches))
    got, want = asyncio.run(_counted(database_url, tenant))
    assert got == want


async def test_rebuild_counts_what_ingest_counted(database_url: str) -> None:
    """`rebuild` (for stores filled without ingest) gives the counters ingest kept."""
    tenant = "rebuilt"
    f = EventFactory(tenant_id=tenant, now=T0, id_prefix="rb")
    events = []
    for n in range(6):
        events += _task_events(f, f"r{n}", PLANS[n % 3], ["run", "complete" if n % 2 else "fail"])
    await _ingest(database_url, tenant, [events[:7], events[7:]])
    kept, want = await _counted(database_url, tenant)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as s, s.begin():
            await plan_counts.rebuild(s)
    finally:
        await engine.dispose()
    rebuilt, _ = await _counted(database_url, tenant)
    assert kept == want == rebuilt
    assert set(kept) == {"plan-a", "plan-b"}
