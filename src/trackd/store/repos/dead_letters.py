"""Events that could not be folded, with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.store.models import DeadLetter, new_id, table_of

MAX_PAYLOAD = 64 * 1024  # enough to diagnose; a hostile producer cannot fill the disk with one


@dataclass(frozen=True, slots=True)
class Rejected:
    tenant_id: str
    topic: str | None
    message_id: str | None
    event_id: str | None
    reason: str
    payload: str


async def add(session: AsyncSession, rejected: Sequence[Rejected]) -> None:
    if not rejected:
        return
    rows = [
        {
            "id": new_id(),
            "tenant_id": r.tenant_id,
            "topic": r.topic,
            "message_id": r.message_id,
            "event_id": r.event_id and r.event_id[:100].replace("\x00", ""),
            # NUL cannot be stored in PostgreSQL text; a dead letter must always be storable.
            "reason": r.reason.replace("\x00", "\\u0000"),
            "payload": r.payload[:MAX_PAYLOAD].replace("\x00", "\\u0000"),
        }
        for r in rejected
    ]
    await session.execute(table_of(DeadLetter).insert(), rows)


async def recent(session: AsyncSession, tenant_id: str, *, limit: int = 100) -> list[DeadLetter]:
    rows = await session.scalars(
        select(DeadLetter)
        .where(DeadLetter.tenant_id == tenant_id)
        .order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc())
        .limit(limit)
    )
    return list(rows)
