"""Events the fold refused, kept so they can be queried."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.tasks import Anomaly
from trackd.store.models import AnomalyRow, TaskExecution, new_id, table_of


async def add(session: AsyncSession, tenant_id: str, anomalies: Sequence[Anomaly]) -> None:
    if not anomalies:
        return
    rows = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "task_id": a.task_id,
            "event_id": a.event_id,
            "kind": a.kind.value,
            "message": a.message,
            "from_state": a.from_state.value,
            "to_state": a.to_state.value,
            "occurred_at": a.at,
        }
        for a in anomalies
    ]
    await session.execute(table_of(AnomalyRow).insert(), rows)


async def for_task(session: AsyncSession, tenant_id: str, task_id: str) -> list[AnomalyRow]:
    rows = await session.scalars(
        select(AnomalyRow)
        .where(AnomalyRow.tenant_id == tenant_id, AnomalyRow.task_id == task_id)
        .order_by(AnomalyRow.occurred_at, AnomalyRow.id)
    )
    return list(rows)


async def for_tasks(
    session: AsyncSession, tenant_id: str, task_ids: Sequence[str]
) -> list[AnomalyRow]:
    """The anomalies of several tasks (a plan's), oldest first."""
    if not task_ids:
        return []
    rows = await session.scalars(
        select(AnomalyRow)
        .where(AnomalyRow.tenant_id == tenant_id, AnomalyRow.task_id.in_(list(task_ids)))
        .order_by(AnomalyRow.occurred_at, AnomalyRow.id)
    )
    return list(rows)


async def counts_by_plan(
    session: AsyncSession, tenant_id: str, plan_ids: Sequence[str]
) -> dict[str, int]:
    """How many anomalies the tasks of each plan have (plans with none are left out)."""
    if not plan_ids:
        return {}
    tasks = table_of(TaskExecution)
    rows = await session.execute(
        select(tasks.c.plan_id, func.count())
        .select_from(AnomalyRow)
        .join(
            tasks,
            (tasks.c.tenant_id == AnomalyRow.tenant_id) & (tasks.c.task_id == AnomalyRow.task_id),
        )
        .where(AnomalyRow.tenant_id == tenant_id, tasks.c.plan_id.in_(list(plan_ids)))
        .group_by(tasks.c.plan_id)
    )
    return {plan_id: n for plan_id, n in rows}
