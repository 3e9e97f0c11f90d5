"""Agent metric buckets (one row per tenant, agent and hour)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.metrics import BucketDelta
from trackd.store.models import AgentMetricBucket, new_id, table_of
from trackd.store.upsert import upsert

_T = table_of(AgentMetricBucket)
_COUNTS = (
    "total_tasks",
    "completed_tasks",
    "failed_tasks",
    "cancelled_tasks",
    "duration_sum",
    "duration_count",
    "input_tokens",
    "output_tokens",
)


async def add(session: AsyncSession, tenant_id: str, deltas: Sequence[BucketDelta]) -> None:
    """Add deltas to their buckets, creating buckets as needed."""
    if not deltas:
        return
    rows = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "agent_id": d.agent_id,
            "period_start": d.period_start,
            "period_end": d.period_start + timedelta(hours=1),
            "last_event_at": d.last_event_at or d.period_start,
            **{name: getattr(d, name) for name in _COUNTS},
        }
        for d in sorted(deltas, key=lambda d: (d.agent_id, d.period_start))
    ]
    stmt = upsert(
        session,
        _T,
        ("tenant_id", "agent_id", "period_start"),
        add=_COUNTS,
        newest=("last_event_at",),
    )
    await session.execute(stmt, rows)


async def buckets_since(
    session: AsyncSession, tenant_id: str, since: datetime, agent_id: str | None
) -> list[BucketDelta]:
    """Buckets starting at or after `since`, one per hour; all agents summed when none given."""
    match = [_T.c.tenant_id == tenant_id, _T.c.period_start >= since]
    if agent_id is not None:
        match.append(_T.c.agent_id == agent_id)
    rows = await session.execute(
        select(_T.c.period_start, *(func.sum(_T.c[name]) for name in _COUNTS))
        .where(*match)
        .group_by(_T.c.period_start)
        .order_by(_T.c.period_start)
    )
    return [
        BucketDelta(
            agent_id or "*",
            r[0],
            int(r[1]),
            int(r[2]),
            int(r[3]),
            int(r[4]),
            float(r[5]),
            int(r[6]),
            input_tokens=int(r[7]),
            output_tokens=int(r[8]),
        )
        for r in rows
    ]


async def buckets_by_agent_since(
    session: AsyncSession, tenant_id: str, since: datetime
) -> dict[str, list[BucketDelta]]:
    """Buckets starting at or after `since`, per agent."""
    rows = await session.execute(
        select(_T.c.agent_id, _T.c.period_start, *(_T.c[name] for name in _COUNTS))
        .where(_T.c.tenant_id == tenant_id, _T.c.period_start >= since)
        .order_by(_T.c.agent_id, _T.c.period_start)
    )
    found: dict[str, list[BucketDelta]] = {}
    for r in rows:
        found.setdefault(r[0], []).append(
            BucketDelta(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                float(r[6]),
                r[7],
                input_tokens=r[8],
                output_tokens=r[9],
            )
        )
    return found


async def newest_update(
    session: AsyncSession, tenant_id: str, since: datetime, agent_id: str | None
) -> datetime | None:
    """The end time of the newest task these buckets count."""
    # A bucket emptied by take-backs (its task was retried) still holds that task's end time.
    match = [_T.c.tenant_id == tenant_id, _T.c.period_start >= since, _T.c.total_tasks > 0]
    if agent_id is not None:
        match.append(_T.c.agent_id == agent_id)
    value: datetime | None = await session.scalar(
        select(func.max(_T.c.last_event_at)).where(*match)
    )
    return value
