"""The event timeline: every folded event, the trace tree, and the idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.store.models import TimelineEvent, table_of
from trackd.store.types import parsed_json, plain, utc_of
from trackd.store.upsert import chunked, insert_ignore

_T = table_of(TimelineEvent)


async def known_ids(session: AsyncSession, tenant_id: str, event_ids: Sequence[str]) -> set[str]:
    """Which of these event ids this tenant already has (duplicates to skip)."""
    if session.get_bind().dialect.name == "postgresql":
        # One probe of the (tenant_id, event_id) index per id, in a statement of one array
        # parameter, so its generic plan (from the sixth batch on) is the probe whatever the
        # statistics say. An IN list or `= ANY` on a table not analysed yet was planned as a
        # scan of the tenant's rows, and each batch's lookup grew with the timeline.
        rows = await session.execute(
            text(
                "SELECT k.id FROM unnest(CAST(:ids AS text[])) AS k(id) "
                "CROSS JOIN LATERAL (SELECT 1 FROM event_timeline t "
                "WHERE t.tenant_id = :tenant AND t.event_id = k.id LIMIT 1) AS hit"
            ),
            {"tenant": tenant_id, "ids": sorted(set(event_ids))},
        )
        return {r[0] for r in rows}
    found: set[str] = set()
    for part in chunked(sorted(set(event_ids))):
        rows = await session.execute(
            select(_T.c.event_id).where(_T.c.tenant_id == tenant_id, _T.c.event_id.in_(part))
        )
        found.update(r[0] for r in rows)
    return found


async def append(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append timeline rows (each with its tenant_id); an already-stored event id is skipped.

    `data` and `attributes` are values parsed from the events' JSON (see `parsed_json`)."""
    if rows:
        ordered = [
            {**r, "data": parsed_json(r["data"]), "attributes": parsed_json(r["attributes"])}
            for r in sorted(rows, key=lambda r: (r["tenant_id"], r["event_id"]))
        ]
        await session.execute(insert_ignore(session, _T, ("tenant_id", "event_id")), ordered)


async def assign_plan(session: AsyncSession, tenant_id: str, plan_of: dict[str, str]) -> None:
    """Give tasks' events stored without a plan the plan their tasks turned out to be in."""
    for task_id, plan_id in sorted(plan_of.items()):
        await session.execute(
            update(TimelineEvent)
            .where(
                TimelineEvent.tenant_id == tenant_id,
                TimelineEvent.task_id == task_id,
                TimelineEvent.plan_id.is_(None),
            )
            .values(plan_id=plan_id)
            .execution_options(synchronize_session=False)
        )


class TimelineEntry(NamedTuple):
    """What a timeline shows of an event (not its payload). A tuple: timelines are read by
    the thousand, and a tuple is built several times faster than a frozen dataclass."""

    event_id: str
    event_type: str
    occurred_at: datetime
    parent_event_id: str | None
    topic: str | None
    source: str
    task_id: str | None
    trace_id: str | None
    plan_id: str | None


_ENTRY = [plain(_T.c[name]) for name in TimelineEntry._fields]


async def for_plan(
    session: AsyncSession, tenant_id: str, plan_id: str, trace_id: str | None, *, limit: int
) -> list[TimelineEntry]:
    """The plan's events and, when the plan has a trace, every event of that trace. Up to
    thousands of rows: read as the driver returns them and converted here, in one pass."""
    match = _T.c.plan_id == plan_id
    if trace_id:
        match = or_(match, _T.c.trace_id == trace_id)
    rows = await session.execute(
        select(*_ENTRY)
        .where(_T.c.tenant_id == tenant_id, match)
        .order_by(_T.c.occurred_at, _T.c.event_id)
        .limit(limit)
    )
    return [
        TimelineEntry(event, kind, utc_of(at), parent, topic, source, task, trace, plan)  # type: ignore[arg-type]
        for event, kind, at, parent, topic, source, task, trace, plan in rows
    ]


@dataclass(frozen=True, slots=True)
class TaskEventEntry:
    """An event of one task, with its payload: a task's page shows messages and errors."""

    event_id: str
    event_type: str
    occurred_at: datetime
    parent_event_id: str | None
    source: str
    data: dict[str, Any] | None
    attributes: dict[str, Any]


_TASK_ENTRY = [_T.c[f.name] for f in fields(TaskEventEntry)]


async def for_task(
    session: AsyncSession, tenant_id: str, task_id: str, *, limit: int
) -> list[TaskEventEntry]:
    """A task's events in the order they happened (at most `limit`, the first ones)."""
    rows = await session.execute(
        select(*_TASK_ENTRY)
        .where(_T.c.tenant_id == tenant_id, _T.c.task_id == task_id)
        .order_by(_T.c.occurred_at, _T.c.event_id)
        .limit(limit)
    )
    return [TaskEventEntry(*r) for r in rows]


async def task_of_event(session: AsyncSession, tenant_id: str, event_id: str) -> str | None:
    """The task an event belongs to, if any."""
    found: str | None = await session.scalar(
        select(_T.c.task_id).where(_T.c.tenant_id == tenant_id, _T.c.event_id == event_id)
    )
    return found
