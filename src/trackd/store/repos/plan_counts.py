"""Plan task counters (plan_task_counts): a plan's tasks counted by state, one row per plan.

Ingest adds each batch's deltas in the transaction that writes the tasks; `rebuild` counts
them again from task_executions (for stores filled by other means than ingest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.plan_counts import STATES, PlanTaskDelta
from trackd.domain.states import TaskState
from trackd.store.models import PlanTaskCount, TaskExecution, new_id, table_of
from trackd.store.upsert import chunked, upsert

_T = table_of(PlanTaskCount)
_KEY = ("tenant_id", "plan_id")


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """What a plan's status shows of its tasks."""

    task_count: int = 0
    completed_tasks: int = 0
    failed_tasks: int = 0
    first_seen_at: datetime | None = None
    last_event_at: datetime | None = None


NO_TASKS = PlanCounts()

COUNT_COLUMNS = (
    sum((_T.c[s] for s in STATES[1:]), _T.c[STATES[0]]),
    _T.c[TaskState.COMPLETED.value],
    _T.c[TaskState.FAILED.value],
    _T.c.first_seen_at,
    _T.c.last_event_at,
)
"""The columns of a PlanCounts, in its order (for reads that join the counters)."""


def counts_of(values: Sequence[Any]) -> PlanCounts:
    """A PlanCounts from COUNT_COLUMNS' values; a plan without counters has no tasks."""
    if values[0] is None:
        return NO_TASKS
    return PlanCounts(*values)


async def add(session: AsyncSession, deltas: Sequence[PlanTaskDelta]) -> None:
    """Add one batch's deltas to their plans' counters, creating counters as needed; in key
    order, so concurrent writers lock rows alike."""
    if not deltas:
        return
    rows = [
        {
            "id": new_id(),
            "tenant_id": d.tenant_id,
            "plan_id": d.plan_id,
            "first_seen_at": d.first_seen_at,
            "last_event_at": d.last_event_at,
            **{s: d.states.get(s, 0) for s in STATES},
        }
        for d in sorted(deltas, key=lambda d: (d.tenant_id, d.plan_id))
    ]
    stmt = upsert(
        session, _T, _KEY, add=STATES, newest=("last_event_at",), oldest=("first_seen_at",)
    )
    await session.execute(stmt, rows)


async def rebuild(session: AsyncSession) -> None:
    """Count every plan's tasks again from task_executions, replacing the counters (for a
    store filled by other means than ingest; the migration that added them does the same)."""
    t = table_of(TaskExecution)
    found = await session.execute(
        select(
            t.c.tenant_id,
            t.c.plan_id,
            func.min(t.c.first_seen_at),
            func.max(t.c.last_event_at),
            *(func.count().filter(t.c.state == s) for s in STATES),
        )
        .where(t.c.plan_id.is_not(None))
        .group_by(t.c.tenant_id, t.c.plan_id)
    )
    await session.execute(delete(_T))
    rows = [
        {
            "id": new_id(),
            "tenant_id": r[0],
            "plan_id": r[1],
            "first_seen_at": r[2],
            "last_event_at": r[3],
            **dict(zip(STATES, r[4:], strict=True)),
        }
        for r in found
    ]
    for part in chunked(rows):
        await session.execute(insert(_T), part)
