"""Poll rows: create, claim with a lease, renew it, and record how a run ended.

Every change a worker makes to a running poll is conditional on still holding it (the
status, the lease owner and the attempt it claimed): a worker that lost its lease to another
learns so from a change that matched no row, and must drop what it was doing.

`claim` reads across tenants (a worker serves every tenant); the rest takes the tenant, or
works on a poll the worker already holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.polls import (
    CLAIMABLE,
    FINISHED,
    UNFINISHED,
    WAITING,
    Next,
    PollStatus,
    after_lost_lease,
)
from trackd.store.models import PollRow, new_id, table_of


@dataclass(frozen=True, slots=True)
class NewPoll:
    """A poll to create; `not_before` None means at once."""

    tenant_id: str
    source: str
    target: Mapping[str, Any]
    max_attempts: int
    timeout_seconds: float | None = None
    schedule_id: uuid.UUID | None = None
    scheduled_for: datetime | None = None
    item: int = 0
    requested_by: str | None = None
    not_before: datetime | None = None


async def add(session: AsyncSession, polls: Sequence[NewPoll], *, now: datetime) -> list[uuid.UUID]:
    """Insert pending polls; returns their ids in order."""
    ids = [new_id() for _ in polls]
    if not polls:
        return ids
    rows = [
        {
            "id": poll_id,
            "tenant_id": p.tenant_id,
            "schedule_id": p.schedule_id,
            "scheduled_for": p.scheduled_for,
            "item": p.item,
            "source": p.source,
            "target": dict(p.target),
            "status": PollStatus.PENDING.value,
            "attempt": 0,
            "max_attempts": p.max_attempts,
            "blocks": 0,
            "not_before": p.not_before or now,
            "timeout_seconds": p.timeout_seconds,
            "event_seq": 0,
            "requested_by": p.requested_by,
            "created_at": now,
            "updated_at": now,
        }
        for poll_id, p in zip(ids, polls, strict=True)
    ]
    await session.execute(table_of(PollRow).insert(), rows)
    return ids


async def get(session: AsyncSession, tenant_id: str, poll_id: uuid.UUID) -> PollRow | None:
    return await session.scalar(
        select(PollRow).where(PollRow.tenant_id == tenant_id, PollRow.id == poll_id)
    )


async def of_schedule(
    session: AsyncSession,
    tenant_id: str,
    schedule_id: uuid.UUID,
    *,
    scheduled_for: datetime | None = None,
    limit: int = 1000,
) -> list[PollRow]:
    """A schedule's polls (of one run, when `scheduled_for` is given), newest run first."""
    query = select(PollRow).where(
        PollRow.tenant_id == tenant_id, PollRow.schedule_id == schedule_id
    )
    if scheduled_for is not None:
        query = query.where(PollRow.scheduled_for == scheduled_for)
    query = query.order_by(PollRow.scheduled_for.desc(), PollRow.item).limit(limit)
    return list(await session.scalars(query))


async def run_counts(
    session: AsyncSession, tenant_id: str, schedule_id: uuid.UUID, scheduled_for: datetime
) -> dict[PollStatus, int]:
    """How many polls of one run of a schedule are in each status."""
    rows = await session.execute(
        select(PollRow.status, func.count())
        .where(
            PollRow.tenant_id == tenant_id,
            PollRow.schedule_id == schedule_id,
            PollRow.scheduled_for == scheduled_for,
        )
        .group_by(PollRow.status)
    )
    return {PollStatus(status): int(count) for status, count in rows.all()}


async def schedules_busy(
    session: AsyncSession, schedule_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of the schedules that still have a poll pending, running or blocked."""
    ids = list(schedule_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(PollRow.schedule_id)
        .where(
            PollRow.schedule_id.in_(ids),
            PollRow.status.in_([s.value for s in UNFINISHED]),
        )
        .distinct()
    )
    return {r for r in rows if r is not None}


async def cancel_waiting(
    session: AsyncSession,
    tenant_id: str,
    *,
    now: datetime,
    schedule_id: uuid.UUID | None = None,
    poll_id: uuid.UUID | None = None,
) -> int:
    """Cancel the polls of a schedule (or one poll) that have not started: pending or
    blocked. A running poll finishes its run. Returns how many were cancelled."""
    query = update(PollRow).where(
        PollRow.tenant_id == tenant_id,
        PollRow.status.in_([s.value for s in WAITING]),
    )
    if schedule_id is not None:
        query = query.where(PollRow.schedule_id == schedule_id)
    if poll_id is not None:
        query = query.where(PollRow.id == poll_id)
    result = await session.execute(
        query.values(
            status=PollStatus.CANCELLED.value,
            not_before=None,
            finished_at=now,
            updated_at=now,
            error="cancelled before it ran",
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Claim:
    """A poll a worker took: its row as claimed, the status it was taken from, and, for a
    lost lease with no attempt left, how it ended instead of running (`ended`)."""

    poll: PollRow
    was: PollStatus
    ended: Next | None = None

    @property
    def runs(self) -> bool:
        return self.ended is None


# Task events a claim emits: a first run or a lost lease says pending then running (a new
# attempt begins), a retry after backoff or a block only running.
def _events_on_claim(was: PollStatus, attempt: int) -> int:
    if was is PollStatus.RUNNING or attempt == 0:
        return 2
    return 1


async def claim(
    session: AsyncSession,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    poll_ids: Sequence[uuid.UUID] | None = None,
) -> list[Claim]:
    """Take up to `limit` due polls (of `poll_ids` only, when given) for `owner`.

    Due: pending or blocked whose backoff has passed, or running whose lease expired (its
    worker died). A claimed poll is running under a lease of `lease_seconds`; a pending one
    starts its next attempt, a blocked one retries the attempt it was on (a block uses none),
    and one whose lease expired used its attempt up: it starts the next, or fails when none
    is left. The caller commits.

    On PostgreSQL the candidate rows are locked with SKIP LOCKED so workers never wait on
    each other; every row is then changed only if it is still as read, so on SQLite, which
    has no row locks, two workers cannot both take a poll either.
    """
    if limit <= 0:
        return []
    query = select(PollRow).where(
        PollRow.not_before <= now,
        PollRow.status.in_([s.value for s in CLAIMABLE]),
    )
    if poll_ids is not None:
        if not poll_ids:
            return []
        query = query.where(PollRow.id.in_(list(poll_ids)))
    query = query.order_by(PollRow.not_before).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(await session.scalars(query))
    lease_until = now + timedelta(seconds=lease_seconds)
    claims: list[Claim] = []
    for row in rows:
        was = PollStatus(row.status)
        values: dict[str, Any] = {"updated_at": now}
        ended = None
        if was is PollStatus.RUNNING:
            ended = after_lost_lease(
                attempt=row.attempt, max_attempts=row.max_attempts, owner=row.lease_owner
            )
        if ended is not None:
            values.update(
                status=ended.status.value,
                not_before=None,
                finished_at=now,
                error=ended.reason,
                lease_owner=None,
                lease_expires_at=None,
                event_seq=row.event_seq + 1,
            )
        else:
            values.update(
                status=PollStatus.RUNNING.value,
                attempt=row.attempt if was is PollStatus.BLOCKED else row.attempt + 1,
                lease_owner=owner,
                lease_expires_at=lease_until,
                not_before=lease_until,
                heartbeat_at=now,
                started_at=row.started_at or now,
                event_seq=row.event_seq + _events_on_claim(was, row.attempt),
            )
        result = await session.execute(
            update(PollRow)
            .where(
                PollRow.id == row.id,
                PollRow.status == row.status,
                PollRow.attempt == row.attempt,
                PollRow.event_seq == row.event_seq,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another worker took it between our read and our write
        for key, value in values.items():
            setattr(row, key, value)
        claims.append(Claim(row, was, ended))
    return claims


async def renew(
    session: AsyncSession,
    poll: PollRow,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
) -> int | None:
    """Extend the lease on a poll `owner` is running; returns the sequence number for a
    heartbeat event, or None when the lease was lost (the poll is no longer ours)."""
    until = now + timedelta(seconds=lease_seconds)
    result = await session.execute(
        update(PollRow)
        .where(*_still_held(poll, owner))
        .values(
            lease_expires_at=until,
            not_before=until,
            heartbeat_at=now,
            updated_at=now,
            event_seq=PollRow.event_seq + 1,
        )
        .returning(PollRow.event_seq)
        .execution_options(synchronize_session=False)
    )
    seq = result.scalar_one_or_none()
    return int(seq) if seq is not None else None


async def finish(
    session: AsyncSession,
    poll: PollRow,
    *,
    owner: str,
    now: datetime,
    status: PollStatus,
    not_before: datetime | None = None,
    error: str | None = None,
    result: Mapping[str, Any] | None = None,
    blocked_host: str | None = None,
) -> int | None:
    """Record how a run `owner` holds ended: completed, failed, pending again (a retry after
    `not_before`) or blocked (until `not_before`). Returns the sequence number for the task
    event, or None when the lease was lost and nothing was written."""
    values: dict[str, Any] = {
        "status": status.value,
        "not_before": None if status in FINISHED else not_before,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
        "error": error,
        "event_seq": PollRow.event_seq + 1,
    }
    if status in FINISHED:
        values["finished_at"] = now
    if result is not None:
        values["result"] = dict(result)
    if status is PollStatus.BLOCKED:
        values["blocks"] = PollRow.blocks + 1
        values["blocked_host"] = blocked_host
    elif status is PollStatus.COMPLETED:
        values["blocks"] = 0
    out = await session.execute(
        update(PollRow)
        .where(*_still_held(poll, owner))
        .values(**values)
        .returning(PollRow.event_seq)
        .execution_options(synchronize_session=False)
    )
    seq = out.scalar_one_or_none()
    return int(seq) if seq is not None else None


async def due_count(session: AsyncSession, *, now: datetime) -> int:
    """Polls a worker could take now, over all tenants (for burst mode and metrics)."""
    count = await session.scalar(
        select(func.count())
        .select_from(PollRow)
        .where(
            PollRow.not_before <= now,
            PollRow.status.in_([s.value for s in CLAIMABLE]),
        )
    )
    return int(count or 0)


def _still_held(poll: PollRow, owner: str) -> tuple[ColumnElement[bool], ...]:
    """The poll is still this attempt, running under `owner`'s lease: a heartbeat or an
    outcome written by a worker whose lease another has taken over changes nothing."""
    return (
        PollRow.id == poll.id,
        PollRow.status == PollStatus.RUNNING.value,
        PollRow.lease_owner == owner,
        PollRow.attempt == poll.attempt,
    )


# -- reads for the dashboard ----------------------------------------------------------------

DUE = "due"  # not a status: pending or blocked polls whose wait has ended


async def page(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: str | None = None,
    source: str | None = None,
    now: datetime,
    limit: int = 50,
    before: uuid.UUID | None = None,
) -> list[PollRow]:
    """A tenant's polls, newest first, optionally in one status (or `DUE`) and of one
    source; `before` continues after the last poll of the previous page (ids are
    time-ordered)."""
    query = select(PollRow).where(PollRow.tenant_id == tenant_id)
    if status == DUE:
        query = query.where(
            PollRow.status.in_([s.value for s in CLAIMABLE]), PollRow.not_before <= now
        )
    elif status is not None:
        query = query.where(PollRow.status == status)
    if source is not None:
        query = query.where(PollRow.source == source)
    if before is not None:
        query = query.where(PollRow.id < before)
    return list(await session.scalars(query.order_by(PollRow.id.desc()).limit(limit)))


async def status_counts(session: AsyncSession, tenant_id: str, *, now: datetime) -> dict[str, int]:
    """How many of a tenant's polls are in each status, and how many are `DUE`."""
    rows = await session.execute(
        select(PollRow.status, func.count())
        .where(PollRow.tenant_id == tenant_id)
        .group_by(PollRow.status)
    )
    counts = {status: int(n) for status, n in rows.all()}
    due = await session.scalar(
        select(func.count())
        .select_from(PollRow)
        .where(
            PollRow.tenant_id == tenant_id,
            PollRow.status.in_([s.value for s in CLAIMABLE]),
            PollRow.not_before <= now,
        )
    )
    counts[DUE] = int(due or 0)
    return counts


@dataclass(frozen=True, slots=True)
class BlockedHost:
    """A host that refused polls of the tenant: how many wait for it and until when."""

    host: str
    polls: int
    until: datetime | None


async def blocked_hosts(session: AsyncSession, tenant_id: str) -> list[BlockedHost]:
    """The hosts the tenant's blocked polls wait for, the longest wait first."""
    rows = await session.execute(
        select(PollRow.blocked_host, func.count(), func.max(PollRow.not_before))
        .where(
            PollRow.tenant_id == tenant_id,
            PollRow.status == PollStatus.BLOCKED.value,
            PollRow.blocked_host.is_not(None),
        )
        .group_by(PollRow.blocked_host)
    )
    hosts = [BlockedHost(str(host), int(n), until) for host, n, until in rows.all()]
    return sorted(hosts, key=lambda h: (h.until is None, h.until), reverse=True)
