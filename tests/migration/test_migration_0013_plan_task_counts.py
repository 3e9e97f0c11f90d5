"""0013 adds plan task counters: tasks stored at 0012 are counted by the upgrade (backfill),
a plan's status reads those counts, and ingest after the upgrade adds to them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from old_database import DatabaseAt
from sqlalchemy import func, select

from trackd.bus.base import Message
from trackd.ingest.batch import apply_batch
from trackd.reads import service as reads
from trackd.store.models import Plan, PlanTaskCount, TaskExecution, new_id, table_of
from trackd.testing import EventFactory

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STATES = ["completed", "completed", "failed", "running", "pending", "cancelled", "waiting"]


def _task(tenant: str, n: int, plan: str | None, state: str) -> dict[str, object]:
    at = T0 + timedelta(minutes=n)
    return {
        "id": new_id(),
        "tenant_id": tenant,
        "task_id": f"task-{n}",
        "plan_id": plan,
        "event_type": "work.requested",
        "state": state,
        "progress": None,
        "data": {},
        "attempt": 1,
        "head_key": "",
        "first_seen_at": at,
        "last_event_at": at + timedelta(seconds=30),
        "started_at": at if state != "pending" else None,
        "completed_at": at + timedelta(seconds=30) if state in ("completed", "failed") else None,
        "created_at": at,
        "updated_at": at,
    }


def _plan(tenant: str, plan: str) -> dict[str, object]:
    return {
        "id": new_id(),
        "tenant_id": tenant,
        "plan_id": plan,
        "status": "running",
        "first_seen_at": T0,
        "last_event_at": T0,
        "state_key": "",
        "status_key": "",
    }


async def test_tasks_stored_at_0012_are_counted_by_the_upgrade(database_at: DatabaseAt) -> None:
    old = await database_at("0012")
    rows = [_task("acme", n, "plan-1", s) for n, s in enumerate(STATES)]
    rows += [_task("acme", 10 + n, "plan-2", "completed") for n in range(3)]
    rows += [_task("acme", 20, None, "running"), _task("other", 0, "plan-1", "failed")]
    await old.insert(table_of(TaskExecution), *rows)
    await old.insert(
        table_of(Plan), _plan("acme", "plan-1"), _plan("acme", "plan-2"), _plan("other", "plan-1")
    )
    await old.upgrade()

    c = table_of(PlanTaskCount)
    async with old.sessions() as s:
        stored = {(r.tenant_id, r.plan_id): r for r in await s.execute(select(c))}
        one = await reads.plan_status(s, "acme", "plan-1")
        two = await reads.plan_status(s, "acme", "plan-2")
        theirs = await reads.plan_status(s, "other", "plan-1")
    assert set(stored) == {("acme", "plan-1"), ("acme", "plan-2"), ("other", "plan-1")}
    p1 = stored[("acme", "plan-1")]
    assert (p1.completed, p1.failed, p1.running, p1.pending, p1.cancelled, p1.waiting) == (
        2,
        1,
        1,
        1,
        1,
        1,
    )
    assert p1.delegated == 0
    assert p1.first_seen_at == T0
    assert p1.last_event_at == T0 + timedelta(minutes=6, seconds=30)
    assert (one.task_count, one.completed_tasks, one.failed_tasks) == (7, 2, 1)
    assert one.as_of == T0 + timedelta(minutes=6, seconds=30)
    assert (two.task_count, two.completed_tasks, two.failed_tasks) == (3, 3, 0)
    assert (theirs.task_count, theirs.completed_tasks, theirs.failed_tasks) == (1, 0, 1)

    # Ingest after the upgrade moves the backfilled counts: task-3 (running) completes.
    f = EventFactory(tenant_id="acme", now=T0 + timedelta(hours=1), id_prefix="after")
    done = f.result("task-3", "work.completed", plan_id="plan-1")
    async with old.sessions() as s, s.begin():
        await apply_batch(s, [Message("m-1", done["topic"], json.dumps(done).encode())], "acme")
    async with old.sessions() as s:
        after = await reads.plan_status(s, "acme", "plan-1")
        counted = await s.scalar(
            select(func.count()).where(
                table_of(TaskExecution).c.plan_id == "plan-1",
                table_of(TaskExecution).c.tenant_id == "acme",
                table_of(TaskExecution).c.state == "completed",
            )
        )
    assert (after.task_count, after.completed_tasks, after.failed_tasks) == (7, 3, 1)
    assert counted == 3
    assert after.as_of == T0 + timedelta(hours=1)
