"""The observer's runs and findings, always of one tenant (and, but for the nightly list of
users, of one user)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.store.models import JournalEntryRow, ObserverFindingRow, ObserverRunRow

HOLDING = "holding"
STOPPED = "stopped"


async def start_run(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    task_id: str | None,
    options: dict[str, object],
    now: datetime,
) -> ObserverRunRow:
    row = ObserverRunRow(
        tenant_id=tenant_id,
        user_id=user_id,
        task_id=task_id,
        status="running",
        started_at=now,
        options=options,
        skipped=[],
    )
    session.add(row)
    await session.flush()
    return row


async def get_run(
    session: AsyncSession, tenant_id: str, run_id: uuid.UUID
) -> ObserverRunRow | None:
    return await session.scalar(
        select(ObserverRunRow).where(
            ObserverRunRow.tenant_id == tenant_id, ObserverRunRow.id == run_id
        )
    )


async def runs_of_task(
    session: AsyncSession, tenant_id: str, task_id: str
) -> Sequence[ObserverRunRow]:
    """The runs a tracked task made (a poll of the `observer` source), oldest first."""
    rows = await session.scalars(
        select(ObserverRunRow)
        .where(ObserverRunRow.tenant_id == tenant_id, ObserverRunRow.task_id == task_id)
        .order_by(ObserverRunRow.started_at, ObserverRunRow.id)
    )
    return list(rows)


async def runs(
    session: AsyncSession, tenant_id: str, user_id: str, *, limit: int
) -> Sequence[ObserverRunRow]:
    """The user's newest `limit` runs, newest first."""
    rows = await session.scalars(
        select(ObserverRunRow)
        .where(ObserverRunRow.tenant_id == tenant_id, ObserverRunRow.user_id == user_id)
        .order_by(ObserverRunRow.started_at.desc(), ObserverRunRow.id.desc())
        .limit(limit)
    )
    return list(rows)


async def findings(
    session: AsyncSession, tenant_id: str, user_id: str, *, status: str | None = None
) -> Sequence[ObserverFindingRow]:
    """The user's findings (only those in `status` when given), latest confirmed first."""
    query = select(ObserverFindingRow).where(
        ObserverFindingRow.tenant_id == tenant_id, ObserverFindingRow.user_id == user_id
    )
    if status is not None:
        query = query.where(ObserverFindingRow.status == status)
    rows = await session.scalars(
        query.order_by(
            ObserverFindingRow.last_confirmed.desc(),
            ObserverFindingRow.q,
            ObserverFindingRow.id,
        )
    )
    return list(rows)


async def users_with_journals(session: AsyncSession, tenant_id: str) -> list[str]:
    """The tenant's users with at least one journal entry, by id."""
    rows = await session.scalars(
        select(JournalEntryRow.user_id)
        .where(JournalEntryRow.tenant_id == tenant_id)
        .distinct()
        .order_by(JournalEntryRow.user_id)
    )
    return list(rows)


async def has_journal(session: AsyncSession, tenant_id: str, user_id: str) -> bool:
    """Whether the user keeps a journal in the tenant (one entry at least)."""
    found = await session.scalar(
        select(JournalEntryRow.id)
        .where(JournalEntryRow.tenant_id == tenant_id, JournalEntryRow.user_id == user_id)
        .limit(1)
    )
    return found is not None


async def get_finding(
    session: AsyncSession, tenant_id: str, finding_id: uuid.UUID
) -> ObserverFindingRow | None:
    return await session.scalar(
        select(ObserverFindingRow).where(
            ObserverFindingRow.tenant_id == tenant_id, ObserverFindingRow.id == finding_id
        )
    )


async def users_observed(session: AsyncSession, tenant_id: str) -> list[str]:
    """The tenant's users with at least one run or finding, by id."""
    with_runs = select(ObserverRunRow.user_id).where(ObserverRunRow.tenant_id == tenant_id)
    with_findings = select(ObserverFindingRow.user_id).where(
        ObserverFindingRow.tenant_id == tenant_id
    )
    rows = await session.scalars(with_runs.union(with_findings))
    return sorted(set(rows))


async def recent_runs(
    session: AsyncSession, tenant_id: str, user_id: str | None, *, limit: int
) -> Sequence[ObserverRunRow]:
    """The tenant's newest `limit` runs (only `user_id`'s when given), newest first."""
    query = select(ObserverRunRow).where(ObserverRunRow.tenant_id == tenant_id)
    if user_id is not None:
        query = query.where(ObserverRunRow.user_id == user_id)
    rows = await session.scalars(
        query.order_by(ObserverRunRow.started_at.desc(), ObserverRunRow.id.desc()).limit(limit)
    )
    return list(rows)


async def tenant_findings(
    session: AsyncSession,
    tenant_id: str,
    user_id: str | None,
    *,
    status: str | None,
    max_q: float | None,
    limit: int,
) -> Sequence[ObserverFindingRow]:
    """The tenant's findings (only `user_id`'s, in `status`, with q at or under `max_q`
    when given), strongest first."""
    query = select(ObserverFindingRow).where(ObserverFindingRow.tenant_id == tenant_id)
    if user_id is not None:
        query = query.where(ObserverFindingRow.user_id == user_id)
    if status is not None:
        query = query.where(ObserverFindingRow.status == status)
    if max_q is not None:
        query = query.where(ObserverFindingRow.q <= max_q)
    rows = await session.scalars(
        query.order_by(
            ObserverFindingRow.q, ObserverFindingRow.user_id, ObserverFindingRow.id
        ).limit(limit)
    )
    return list(rows)
