"""Schedule rows: create, read, cancel, and claim the due ones for a scheduler.

Only `claim_due` reads across tenants: a scheduler serves every tenant. Everything else
takes the tenant explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.schedules import (
    ScheduleKind,
    ScheduleSpec,
    ScheduleStatus,
    fire_time,
    first_run,
)
from trackd.errors import Conflict
from trackd.store.models import ScheduleRow, new_id


def spec_of(row: ScheduleRow) -> ScheduleSpec:
    """The timing rules of a stored schedule."""
    return ScheduleSpec(
        kind=ScheduleKind(row.kind),
        interval_seconds=row.interval_seconds,
        cron=row.cron,
        run_at=row.run_at,
        timezone=row.timezone,
        jitter_seconds=row.jitter_seconds,
        misfire_grace_seconds=row.misfire_grace_seconds,
    )


async def create(
    session: AsyncSession,
    tenant_id: str,
    *,
    name: str,
    source: str,
    targets: Sequence[Mapping[str, Any]],
    spec: ScheduleSpec,
    max_attempts: int,
    timeout_seconds: float | None,
    owner: str | None,
    labels: Mapping[str, Any],
    now: datetime,
) -> ScheduleRow:
    """Store a new active schedule, due at its first run.

    Raises:
        Conflict: the tenant has an active schedule with this name.
    """
    spec.validate()
    schedule_id = new_id()
    nominal = first_run(spec, now)
    row = ScheduleRow(
        id=schedule_id,
        tenant_id=tenant_id,
        name=name,
        source=source,
        targets=[dict(t) for t in targets],
        kind=spec.kind.value,
        interval_seconds=spec.interval_seconds,
        cron=spec.cron,
        run_at=spec.run_at,
        timezone=spec.timezone,
        jitter_seconds=spec.jitter_seconds,
        misfire_grace_seconds=spec.misfire_grace_seconds,
        status=ScheduleStatus.ACTIVE.value,
        enabled=True,
        next_nominal_at=nominal,
        next_run_at=fire_time(spec, str(schedule_id), nominal),
        missed_runs=0,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        owner=owner,
        labels=dict(labels),
        created_at=now,
        updated_at=now,
    )
    # A savepoint, so that a taken name leaves the caller's transaction usable.
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(
            f"tenant {tenant_id!r} already has an active schedule named {name!r}; "
            "cancel it first or pick another name"
        ) from None
    return row


async def get(session: AsyncSession, tenant_id: str, schedule_id: uuid.UUID) -> ScheduleRow | None:
    return await session.scalar(
        select(ScheduleRow).where(ScheduleRow.tenant_id == tenant_id, ScheduleRow.id == schedule_id)
    )


async def get_by_name(session: AsyncSession, tenant_id: str, name: str) -> ScheduleRow | None:
    """The tenant's schedule called `name`: the active one, else the newest."""
    rows = await session.scalars(
        select(ScheduleRow)
        .where(ScheduleRow.tenant_id == tenant_id, ScheduleRow.name == name)
        .order_by(ScheduleRow.created_at.desc(), ScheduleRow.id.desc())
    )
    found = list(rows)
    active = [r for r in found if r.status == ScheduleStatus.ACTIVE]
    if active:
        return active[0]
    return found[0] if found else None


async def find(
    session: AsyncSession,
    tenant_id: str,
    *,
    owner: str | None = None,
    labels: Mapping[str, str] | None = None,
    statuses: Sequence[ScheduleStatus] | None = None,
    source: str | None = None,
    limit: int = 100,
) -> list[ScheduleRow]:
    """The tenant's schedules, newest first, filtered by owner, source, status and labels
    (each given label must have the given string value)."""
    query = select(ScheduleRow).where(ScheduleRow.tenant_id == tenant_id)
    if owner is not None:
        query = query.where(ScheduleRow.owner == owner)
    if source is not None:
        query = query.where(ScheduleRow.source == source)
    if statuses:
        query = query.where(ScheduleRow.status.in_([s.value for s in statuses]))
    for key, value in (labels or {}).items():
        query = query.where(ScheduleRow.labels[key].as_string() == value)
    query = query.order_by(ScheduleRow.created_at.desc(), ScheduleRow.id.desc()).limit(limit)
    return list(await session.scalars(query))


async def cancel(
    session: AsyncSession, tenant_id: str, schedule_id: uuid.UUID, *, now: datetime
) -> ScheduleRow | None:
    """Cancel an active schedule; None when the tenant has no such schedule. A schedule that
    is already over (done, missed, cancelled) is returned as it is."""
    row = await session.scalar(
        select(ScheduleRow)
        .where(ScheduleRow.tenant_id == tenant_id, ScheduleRow.id == schedule_id)
        .with_for_update()
    )
    if row is None or row.status != ScheduleStatus.ACTIVE:
        return row
    row.status = ScheduleStatus.CANCELLED.value
    row.enabled = False
    row.next_run_at = row.next_nominal_at = None
    row.cancelled_at = row.updated_at = now
    await session.flush()
    return row


async def claim_due(session: AsyncSession, *, now: datetime, limit: int) -> list[ScheduleRow]:
    """Lock up to `limit` schedules due at `now`, most overdue first, for this transaction.

    On PostgreSQL the rows are locked with SKIP LOCKED: another scheduler's claim skips them
    rather than waiting, so schedulers share the due rows and never fire one run twice. SQLite
    has no row locks (the clause is left out); there, one scheduler is the supported setup,
    and the polls' unique run key turns a second one's double fire into a failed commit.
    """
    query = (
        select(ScheduleRow)
        .where(ScheduleRow.next_run_at <= now, ScheduleRow.enabled.is_(True))
        .order_by(ScheduleRow.next_run_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(await session.scalars(query))


async def page(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: ScheduleStatus | None = None,
    source: str | None = None,
    limit: int = 50,
    before: uuid.UUID | None = None,
) -> list[ScheduleRow]:
    """A tenant's schedules for the dashboard, newest first (ids are time-ordered), in one
    status and of one source if given; `before` continues after the previous page."""
    query = select(ScheduleRow).where(ScheduleRow.tenant_id == tenant_id)
    if status is not None:
        query = query.where(ScheduleRow.status == status.value)
    if source is not None:
        query = query.where(ScheduleRow.source == source)
    if before is not None:
        query = query.where(ScheduleRow.id < before)
    return list(await session.scalars(query.order_by(ScheduleRow.id.desc()).limit(limit)))
