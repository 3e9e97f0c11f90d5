"""Plan records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, and_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.plans import PlanRecord, PlanStatus
from trackd.store.models import Plan, PlanTaskCount, new_id, table_of
from trackd.store.repos.plan_counts import COUNT_COLUMNS, PlanCounts, counts_of
from trackd.store.upsert import rows_by_keys, upsert

_T = table_of(Plan)
_FIELDS = (
    "tenant_id",
    "plan_id",
    "status",
    "first_seen_at",
    "last_event_at",
    "started_at",
    "completed_at",
    "current_state",
    "state_key",
    "status_key",
    "trace_id",
    "session_id",
    "goal",
    "reason",
)
_COLUMNS = [_T.c[name] for name in _FIELDS]
_KEY = ("tenant_id", "plan_id")


def _to_record(row: Row[Any]) -> PlanRecord:
    values = dict(row._mapping)
    values["status"] = PlanStatus(values["status"])
    return PlanRecord(**values)


async def load_many(
    session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], PlanRecord]:
    """The stored records for (tenant_id, plan_id) pairs; missing ones are absent."""
    records = [_to_record(r) for r in await rows_by_keys(session, _COLUMNS, _T, "plan_id", keys)]
    return {(r.tenant_id, r.plan_id): r for r in records}


async def lock_many(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> None:
    """Hold these plans until the transaction ends, so that concurrent ingest processes
    fold a plan one after the other instead of overwriting each other's fold.

    PostgreSQL: transaction-level advisory locks, taken in key order (no deadlocks). SQLite
    lets one writer in at a time, and a writer that read a plan before another committed
    fails and retries its whole batch, so nothing is needed there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    names = sorted(f"{tenant}\x1f{plan}" for tenant, plan in keys)
    if names:
        await session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                "FROM unnest(CAST(:names AS text[])) AS k ORDER BY k"
            ),
            {"names": names},
        )


async def save_many(session: AsyncSession, records: Sequence[PlanRecord]) -> None:
    if not records:
        return
    rows = []
    for rec in sorted(records, key=lambda r: (r.tenant_id, r.plan_id)):
        row = {name: getattr(rec, name) for name in _FIELDS}
        row["status"] = rec.status.value
        row["id"] = new_id()
        rows.append(row)
    replace = [c for c in _FIELDS if c not in _KEY]
    await session.execute(upsert(session, _T, _KEY, replace=replace), rows)


async def get(session: AsyncSession, tenant_id: str, plan_id: str) -> PlanRecord | None:
    row = (
        await session.execute(
            select(*_COLUMNS).where(_T.c.tenant_id == tenant_id, _T.c.plan_id == plan_id)
        )
    ).first()
    return _to_record(row) if row else None


async def list_recent(session: AsyncSession, tenant_id: str, *, limit: int) -> list[PlanRecord]:
    rows = await session.execute(
        select(*_COLUMNS)
        .where(_T.c.tenant_id == tenant_id)
        .order_by(_T.c.last_event_at.desc())
        .limit(limit)
    )
    return [_to_record(r) for r in rows]


_COUNTS = table_of(PlanTaskCount)
_WITH_COUNTS = _T.outerjoin(
    _COUNTS, and_(_COUNTS.c.tenant_id == _T.c.tenant_id, _COUNTS.c.plan_id == _T.c.plan_id)
)


def _with_counts(values: Sequence[Any]) -> tuple[PlanRecord, PlanCounts]:
    plan = dict(zip(_FIELDS, values, strict=False))
    plan["status"] = PlanStatus(plan["status"])
    return PlanRecord(**plan), counts_of(values[len(_FIELDS) :])


async def get_with_counts(
    session: AsyncSession, tenant_id: str, plan_id: str
) -> tuple[PlanRecord, PlanCounts] | None:
    """A plan and its task counters, in one query (one row, by key)."""
    row = (
        await session.execute(
            select(*_COLUMNS, *COUNT_COLUMNS)
            .select_from(_WITH_COUNTS)
            .where(_T.c.tenant_id == tenant_id, _T.c.plan_id == plan_id)
        )
    ).first()
    return _with_counts(tuple(row)) if row else None


async def list_recent_with_counts(
    session: AsyncSession, tenant_id: str, *, limit: int
) -> list[tuple[PlanRecord, PlanCounts]]:
    """The plans with the newest events first, each with its task counters."""
    rows = await session.execute(
        select(*_COLUMNS, *COUNT_COLUMNS)
        .select_from(_WITH_COUNTS)
        .where(_T.c.tenant_id == tenant_id)
        .order_by(_T.c.last_event_at.desc())
        .limit(limit)
    )
    return [_with_counts(tuple(r)) for r in rows]
