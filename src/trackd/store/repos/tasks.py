"""Task records and their state transitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord, Transition, duration_between
from trackd.store.models import StateTransition, TaskExecution, new_id, table_of, utcnow
from trackd.store.upsert import rows_by_keys, upsert

_T = table_of(TaskExecution)
_RECORD_FIELDS = (
    "tenant_id",
    "task_id",
    "state",
    "event_type",
    "attempt",
    "head_key",
    "first_seen_at",
    "last_event_at",
    "plan_id",
    "progress",
    "message",
    "message_key",
    "parent_key",
    "started_at",
    "completed_at",
    "trace_id",
    "parent_event_id",
    "agent_id",
    "requester",
    "error",
    "max_attempts",
    "data",
    "result",
    "owner_user_id",
)
_COLUMNS = [_T.c[name] for name in _RECORD_FIELDS]
_KEY = ("tenant_id", "task_id")


def _to_record(row: Row[Any]) -> TaskRecord:
    values = dict(row._mapping)
    values["state"] = TaskState(values["state"])
    values["data"] = values["data"] or {}
    return TaskRecord(**values)


def _to_row(rec: TaskRecord) -> dict[str, Any]:
    row = {name: getattr(rec, name) for name in _RECORD_FIELDS}
    row["state"] = rec.state.value
    row["id"] = new_id()
    row["updated_at"] = utcnow()
    return row


async def load_many(
    session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], TaskRecord]:
    """The stored records for (tenant_id, task_id) pairs; missing ones are absent."""
    records = [_to_record(r) for r in await rows_by_keys(session, _COLUMNS, _T, "task_id", keys)]
    return {(r.tenant_id, r.task_id): r for r in records}


async def save_many(session: AsyncSession, records: Sequence[TaskRecord]) -> None:
    """Insert or overwrite records, in key order so concurrent writers take locks alike."""
    if not records:
        return
    rows = [_to_row(r) for r in sorted(records, key=lambda r: (r.tenant_id, r.task_id))]
    # The owner is whoever published first: a row written meanwhile keeps its owner.
    kept = (*_KEY, "owner_user_id")
    replace = [c for c in _RECORD_FIELDS if c not in kept] + ["updated_at"]
    await session.execute(upsert(session, _T, _KEY, replace=replace), rows)


async def add_transitions(
    session: AsyncSession,
    tenant_id: str,
    plan_ids: dict[str, str | None],
    transitions: Sequence[Transition],
) -> None:
    if not transitions:
        return
    rows = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "task_id": t.task_id,
            "plan_id": plan_ids.get(t.task_id),
            "event_id": t.event_id,
            "from_state": t.from_state.value if t.from_state else None,
            "to_state": t.to_state.value,
            "attempt": t.attempt,
            "reason": t.reason,
            "transitioned_at": t.at,
        }
        for t in transitions
    ]
    await session.execute(table_of(StateTransition).insert(), rows)


async def owners(
    session: AsyncSession, tenant_id: str, task_ids: Iterable[str]
) -> dict[str, str | None]:
    """The owner (a user id, or None for a producer's task) of each of these tasks that
    exists; tasks not stored yet are absent."""
    keys = [(tenant_id, t) for t in set(task_ids)]
    if not keys:
        return {}
    columns = [_T.c.tenant_id, _T.c.task_id, _T.c.owner_user_id]
    rows = await rows_by_keys(session, columns, _T, "task_id", keys)
    return {r.task_id: r.owner_user_id for r in rows}


async def get(session: AsyncSession, tenant_id: str, task_id: str) -> TaskRecord | None:
    row = (
        await session.execute(
            select(*_COLUMNS).where(_T.c.tenant_id == tenant_id, _T.c.task_id == task_id)
        )
    ).first()
    return _to_record(row) if row else None


async def list_for_plan(
    session: AsyncSession, tenant_id: str, plan_id: str, *, limit: int, offset: int = 0
) -> list[TaskRecord]:
    rows = await session.execute(
        select(*_COLUMNS)
        .where(_T.c.tenant_id == tenant_id, _T.c.plan_id == plan_id)
        .order_by(_T.c.first_seen_at, _T.c.task_id)
        .limit(limit)
        .offset(offset)
    )
    return [_to_record(r) for r in rows]


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """The columns a list of tasks shows; lighter to read than whole records."""

    task_id: str
    event_type: str
    state: str
    started_at: datetime | None
    completed_at: datetime | None
    progress: float | None
    attempt: int
    agent_id: str | None
    last_event_at: datetime

    @property
    def duration_seconds(self) -> float | None:
        return duration_between(self.started_at, self.completed_at)


_SUMMARY = [_T.c[f.name] for f in fields(TaskSummary)]


async def summaries_for_plan(
    session: AsyncSession, tenant_id: str, plan_id: str, *, limit: int, offset: int = 0
) -> list[TaskSummary]:
    """A plan's tasks in the order they were first seen."""
    rows = await session.execute(
        select(*_SUMMARY)
        .where(_T.c.tenant_id == tenant_id, _T.c.plan_id == plan_id)
        .order_by(_T.c.first_seen_at, _T.c.task_id)
        .limit(limit)
        .offset(offset)
    )
    return [TaskSummary(*r) for r in rows]


async def plan_counts(session: AsyncSession, tenant_id: str, plan_id: str) -> dict[str, Any]:
    """Task count, completed and failed counts, and the newest event time of a plan's tasks."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(_T.c.state == TaskState.COMPLETED.value),
                func.count().filter(_T.c.state == TaskState.FAILED.value),
                func.max(_T.c.last_event_at),
                func.min(_T.c.first_seen_at),
            ).where(_T.c.tenant_id == tenant_id, _T.c.plan_id == plan_id)
        )
    ).one()
    return {
        "task_count": row[0],
        "completed_tasks": row[1],
        "failed_tasks": row[2],
        "last_event_at": row[3],
        "first_seen_at": row[4],
    }


async def transitions_of(
    session: AsyncSession, tenant_id: str, task_id: str
) -> list[StateTransition]:
    rows = await session.scalars(
        select(StateTransition)
        .where(StateTransition.tenant_id == tenant_id, StateTransition.task_id == task_id)
        .order_by(StateTransition.transitioned_at, StateTransition.id)
    )
    return list(rows)
