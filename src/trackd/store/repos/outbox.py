"""The notification outbox: messages written with the change that caused them, delivered later.

A row is due while its status is "pending" and `next_attempt_at` has passed. `claim` takes due
rows for one notifier by moving `next_attempt_at` a lease ahead and counting the attempt, in
one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent notifiers take different
rows; SQLite has one writer at a time). A notifier that dies holding rows only delays them:
when the lease passes they are due again. Marking a row sent or failed names the claim
(notifier and attempt), so a notifier whose lease ran out cannot overwrite the outcome of the
one that took the row over.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.store.models import NotificationChannel, OutboxRow, new_id, table_of, utcnow
from trackd.store.types import JsonText, json_text
from trackd.store.upsert import chunked, insert_ignore

PENDING: Final = "pending"
SENT: Final = "sent"
DEAD: Final = "dead"
STATUSES: Final = (PENDING, SENT, DEAD)
MAX_ERROR = 2000


@dataclass(frozen=True, slots=True)
class Message:
    """A message to put in the outbox."""

    kind: str
    idempotency_key: str
    event_type: str
    payload: dict[str, Any]
    channel_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row one notifier holds until its lease ends; `attempts` counts this one."""

    id: uuid.UUID
    tenant_id: str
    channel_id: uuid.UUID | None
    kind: str
    idempotency_key: str
    event_type: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    claimed_by: str


async def enqueue(
    session: AsyncSession,
    tenant_id: str,
    messages: Sequence[Message],
    *,
    max_attempts: int = 8,
    not_before: datetime | None = None,
) -> None:
    """Add messages; one whose idempotency key the tenant already has is left out, so
    enqueueing the same change twice notifies once."""
    if not messages:
        return
    now = utcnow()
    # An event's messages to many channels share one payload: judged and written once.
    payloads: dict[int, JsonText] = {}
    for m in messages:
        if id(m.payload) not in payloads:
            payloads[id(m.payload)] = json_text(m.payload)
    rows = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "channel_id": m.channel_id,
            "kind": m.kind,
            "idempotency_key": m.idempotency_key,
            "event_type": m.event_type,
            "payload": payloads[id(m.payload)],
            "status": PENDING,
            "attempts": 0,
            "max_attempts": max_attempts,
            "next_attempt_at": not_before or now,
            "created_at": now,
        }
        for m in messages
    ]
    stmt = insert_ignore(session, table_of(OutboxRow), ["tenant_id", "idempotency_key"])
    for chunk in chunked(rows, 200):
        await session.execute(stmt, list(chunk))


async def claim(
    session: AsyncSession,
    *,
    worker: str,
    limit: int,
    lease: timedelta,
    now: datetime | None = None,
) -> list[Claimed]:
    """Take up to `limit` due rows of any tenant, oldest due first, for `lease`."""
    now = now or utcnow()
    table = table_of(OutboxRow)
    due = (
        select(table.c.id)
        .where(table.c.status == PENDING, table.c.next_attempt_at <= now)
        .order_by(table.c.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Rows another notifier is claiming right now are skipped, not waited for.
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(
            attempts=table.c.attempts + 1,
            next_attempt_at=now + lease,
            claimed_by=worker,
            claimed_at=now,
        )
        .returning(
            table.c.id,
            table.c.tenant_id,
            table.c.channel_id,
            table.c.kind,
            table.c.idempotency_key,
            table.c.event_type,
            table.c.payload,
            table.c.attempts,
            table.c.max_attempts,
            table.c.claimed_by,
        )
    )
    rows = (await session.execute(stmt)).all()
    claimed = [Claimed(*row) for row in rows]
    claimed.sort(key=lambda c: c.id)
    return claimed


def _held(claimed: Claimed) -> Any:
    table = table_of(OutboxRow)
    return (
        (table.c.id == claimed.id)
        & (table.c.status == PENDING)
        & (table.c.claimed_by == claimed.claimed_by)
        & (table.c.attempts == claimed.attempts)
    )


async def mark_sent(
    session: AsyncSession, claimed: Claimed, *, now: datetime | None = None
) -> bool:
    """Record a delivery; False when the claim was lost (the lease ran out and another
    notifier took the row, which will deliver it again with the same idempotency key)."""
    result = await session.execute(
        update(table_of(OutboxRow))
        .where(_held(claimed))
        .values(status=SENT, sent_at=now or utcnow(), last_error=None)
    )
    return bool(getattr(result, "rowcount", 0))


async def mark_failed(
    session: AsyncSession,
    claimed: Claimed,
    *,
    error: str,
    retry_at: datetime | None,
    count_attempt: bool = True,
) -> bool:
    """Record a failed delivery: due again at `retry_at`, or dead when it is None.

    `count_attempt=False` gives the attempt back (the receiver asked to wait, as with a
    429): waiting as told is not a failure and must not use up the tries.
    """
    table = table_of(OutboxRow)
    values: dict[str, Any] = {"last_error": error[:MAX_ERROR]}
    if retry_at is None:
        values["status"] = DEAD
    else:
        values["next_attempt_at"] = retry_at
    if not count_attempt:
        values["attempts"] = table.c.attempts - 1
    result = await session.execute(update(table).where(_held(claimed)).values(**values))
    return bool(getattr(result, "rowcount", 0))


async def get(session: AsyncSession, tenant_id: str, idempotency_key: str) -> OutboxRow | None:
    row: OutboxRow | None = await session.scalar(
        select(OutboxRow).where(
            OutboxRow.tenant_id == tenant_id, OutboxRow.idempotency_key == idempotency_key
        )
    )
    return row


async def recent(
    session: AsyncSession, tenant_id: str, *, status: str | None = None, limit: int = 100
) -> list[OutboxRow]:
    """A tenant's messages, newest first (`status`: pending, sent or dead)."""
    query = select(OutboxRow).where(OutboxRow.tenant_id == tenant_id)
    if status is not None:
        query = query.where(OutboxRow.status == status)
    rows = await session.scalars(query.order_by(OutboxRow.created_at.desc()).limit(limit))
    return list(rows)


async def counts(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    """How many of a tenant's messages are pending, sent and dead."""
    rows = await session.execute(
        select(OutboxRow.status, func.count())
        .where(OutboxRow.tenant_id == tenant_id)
        .group_by(OutboxRow.status)
    )
    return {status: int(n) for status, n in rows.all()}


async def prune_finished(session: AsyncSession, before: datetime, *, batch: int = 500) -> int:
    """Delete up to `batch` sent or dead messages created before `before`, of any tenant."""
    ids = list(
        await session.scalars(
            select(OutboxRow.id)
            .where(OutboxRow.status.in_((SENT, DEAD)), OutboxRow.created_at < before)
            .limit(batch)
        )
    )
    if ids:
        await session.execute(delete(OutboxRow).where(OutboxRow.id.in_(ids)))
    return len(ids)


# -- reads for the dashboard ----------------------------------------------------------------

RETRYING: Final = "retrying"  # not a status: pending after a failed delivery
VIEWS: Final = (PENDING, RETRYING, DEAD, SENT)


def _in_view(view: str) -> Any:
    """The condition of a dashboard view: "pending" is a message not yet tried or in its
    first try, "retrying" one that failed before and waits for another."""
    if view == PENDING:
        return (OutboxRow.status == PENDING) & OutboxRow.last_error.is_(None)
    if view == RETRYING:
        return (OutboxRow.status == PENDING) & OutboxRow.last_error.is_not(None)
    return OutboxRow.status == view


async def page(
    session: AsyncSession,
    tenant_id: str,
    *,
    view: str | None = None,
    owner_user_id: str | None = None,
    limit: int = 50,
    before: uuid.UUID | None = None,
) -> list[tuple[OutboxRow, NotificationChannel | None]]:
    """A tenant's messages with their channels, newest first, optionally in one of `VIEWS`
    and only to the channels of one user; `before` continues after the previous page."""
    query = (
        select(OutboxRow, NotificationChannel)
        .outerjoin(NotificationChannel, NotificationChannel.id == OutboxRow.channel_id)
        .where(OutboxRow.tenant_id == tenant_id)
    )
    if view is not None:
        query = query.where(_in_view(view))
    if owner_user_id is not None:
        query = query.where(NotificationChannel.owner_user_id == owner_user_id)
    if before is not None:
        query = query.where(OutboxRow.id < before)
    rows = await session.execute(query.order_by(OutboxRow.id.desc()).limit(limit))
    return [(message, channel) for message, channel in rows.all()]


async def view_counts(
    session: AsyncSession, tenant_id: str, *, owner_user_id: str | None = None
) -> dict[str, int]:
    """How many of a tenant's messages (to one user's channels, if given) are in each view."""
    counts: dict[str, int] = {}
    for view in VIEWS:
        query = (
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.tenant_id == tenant_id, _in_view(view))
        )
        if owner_user_id is not None:
            query = query.join(
                NotificationChannel, NotificationChannel.id == OutboxRow.channel_id
            ).where(NotificationChannel.owner_user_id == owner_user_id)
        counts[view] = int(await session.scalar(query) or 0)
    return counts
