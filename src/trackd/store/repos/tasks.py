"""Task records and their state transitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord, Transition, duration_between
from trackd.store.models import StateTransition, TaskExecution, new_id, table_of, utcnow
from trackd.store.types import parsed_json, plain, utc_of
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
    # Both come from events' JSON payloads.
    row["data"] = parsed_json(rec.data)
    row["result"] = parsed_json(rec.result)
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

    @property
    def ran_from(self) -> datetime | None:
        """When the task really started: None for one cancelled before it ever ran (the fold
        takes the cancel itself as its first non-pending event, so its start is its end)."""
        return ran_from(self.state, self.started_at, self.completed_at)

    @property
    def ran_seconds(self) -> float | None:
        return duration_between(self.ran_from, self.completed_at)


def ran_from(
    state: str, started_at: datetime | None, completed_at: datetime | None
) -> datetime | None:
    """A task's start as a page shows it: none for a task cancelled before it ran."""
    if state == TaskState.CANCELLED.value and started_at is not None and started_at == completed_at:
        return None
    return started_at


@dataclass(frozen=True, slots=True)
class TaskListRow(TaskSummary):
    """A row of the tasks across plans: a summary and where the task belongs."""

    plan_id: str | None = None
    error: str | None = None
    parent_event_id: str | None = None
    row_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What the list of tasks across plans is narrowed to; None means any."""

    state: str | None = None
    agent: str | None = None  # the agent, or the requester for a task no agent took
    event_type: str | None = None  # a prefix: `report.` takes every report task
    search: str | None = None  # part of a task id
    since: datetime | None = None  # last event at or after
    until: datetime | None = None  # last event before


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_across_plans(
    session: AsyncSession,
    tenant_id: str,
    where: TaskFilter,
    *,
    limit: int,
    after: tuple[datetime, UUID] | None = None,
) -> list[TaskListRow]:
    """The tenant's tasks, newest event first, narrowed by `where`; `after` is the (last event,
    row id) of the last row of the page before: keyset paging, stable while tasks arrive."""
    match = [_T.c.tenant_id == tenant_id]
    if where.state:
        match.append(_T.c.state == where.state)
    if where.agent:
        match.append(
            or_(
                _T.c.agent_id == where.agent,
                and_(_T.c.agent_id.is_(None), _T.c.requester == where.agent),
            )
        )
    if where.event_type:
        match.append(_T.c.event_type.like(_escape_like(where.event_type) + "%", escape="\\"))
    if where.search:
        match.append(_T.c.task_id.like("%" + _escape_like(where.search) + "%", escape="\\"))
    if where.since:
        match.append(_T.c.last_event_at >= where.since)
    if where.until:
        match.append(_T.c.last_event_at < where.until)
    if after is not None:
        at, row_id = after
        match.append(or_(_T.c.last_event_at < at, and_(_T.c.last_event_at == at, _T.c.id < row_id)))
    rows = await session.execute(
        select(*_SUMMARY, _T.c.plan_id, _T.c.error, _T.c.parent_event_id, _T.c.id)
        .where(*match)
        .order_by(_T.c.last_event_at.desc(), _T.c.id.desc())
        .limit(limit)
    )
    return [TaskListRow(*r) for r in rows]


async def rows_for_plan(
    session: AsyncSession, tenant_id: str, plan_id: str, *, limit: int
) -> list[TaskListRow]:
    """A plan's tasks with their errors and parent events, in the order they were first seen."""
    rows = await session.execute(
        select(*_SUMMARY, _T.c.plan_id, _T.c.error, _T.c.parent_event_id, _T.c.id)
        .where(_T.c.tenant_id == tenant_id, _T.c.plan_id == plan_id)
        .order_by(_T.c.first_seen_at, _T.c.task_id)
        .limit(limit)
    )
    return [TaskListRow(*r) for r in rows]


async def agents(session: AsyncSession, tenant_id: str, *, limit: int) -> list[str]:
    """The names tasks are grouped by (agent, else requester), for a filter's choices."""
    name = func.coalesce(_T.c.agent_id, _T.c.requester)
    rows = await session.scalars(
        select(name)
        .where(_T.c.tenant_id == tenant_id, name.is_not(None))
        .distinct()
        .order_by(name)
        .limit(limit)
    )
    return [r for r in rows if r]


async def open_counts_by_agent(
    session: AsyncSession, tenant_id: str, unknown: str
) -> dict[tuple[str, str], int]:
    """How many tasks are in each state that has not ended, per (agent, state); a task with
    no agent counts under its requester, or `unknown`, as the metrics' buckets count it."""
    name = func.coalesce(_T.c.agent_id, _T.c.requester, unknown)
    ended = [s.value for s in TaskState if s.terminal]
    rows = await session.execute(
        select(name, _T.c.state, func.count())
        .where(_T.c.tenant_id == tenant_id, _T.c.state.not_in(ended))
        .group_by(name, _T.c.state)
    )
    return {(agent, state): n for agent, state, n in rows}


async def ended_durations_since(
    session: AsyncSession, tenant_id: str, since: datetime, *, limit: int
) -> list[tuple[datetime, float]]:
    """(end, seconds) of the tasks that completed or failed since `since`, newest first, at
    most `limit`: the raw rows kept (the hourly buckets keep sums, not percentiles)."""
    rows = await session.execute(
        select(_T.c.completed_at, _T.c.started_at)
        .where(
            _T.c.tenant_id == tenant_id,
            _T.c.completed_at >= since,
            _T.c.started_at.is_not(None),
            _T.c.state.in_([TaskState.COMPLETED.value, TaskState.FAILED.value]),
        )
        .order_by(_T.c.completed_at.desc())
        .limit(limit)
    )
    # started_at is never null here (the query says so): the `or` only satisfies the types.
    return [(end, duration_between(start, end) or 0.0) for end, start in rows]


async def children_of(
    session: AsyncSession, tenant_id: str, event_ids: Sequence[str], *, limit: int
) -> list[TaskSummary]:
    """Tasks whose request named one of `event_ids` as its parent event."""
    if not event_ids:
        return []
    rows = await session.execute(
        select(*_SUMMARY)
        .where(_T.c.tenant_id == tenant_id, _T.c.parent_event_id.in_(list(event_ids)))
        .order_by(_T.c.first_seen_at, _T.c.task_id)
        .limit(limit)
    )
    return [TaskSummary(*r) for r in rows]


_SUMMARY = [_T.c[f.name] for f in fields(TaskSummary)]


class PlanTaskRow(NamedTuple):
    """A TaskSummary as a tuple: a plan's tasks are read by the thousand, and a tuple is
    built several times faster than a frozen dataclass."""

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


_PLAIN_SUMMARY = [plain(_T.c[name]) for name in PlanTaskRow._fields]


async def summaries_for_plan(
    session: AsyncSession, tenant_id: str, plan_id: str, *, limit: int, offset: int = 0
) -> list[PlanTaskRow]:
    """A plan's tasks in the order they were first seen. Up to thousands of rows: read as the
    driver returns them and converted here, in one pass."""
    rows = await session.execute(
        select(*_PLAIN_SUMMARY)
        .where(_T.c.tenant_id == tenant_id, _T.c.plan_id == plan_id)
        .order_by(_T.c.first_seen_at, _T.c.task_id)
        .limit(limit)
        .offset(offset)
    )
    return [
        PlanTaskRow(task, kind, state, utc_of(start), utc_of(end), progress, n, agent, utc_of(last))  # type: ignore[arg-type]
        for task, kind, state, start, end, progress, n, agent, last in rows
    ]


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
