"""Snapshot rows: one numbered history per (tenant, source, subject, season).

Rows are only ever inserted and deleted (by retention). `season` is "" for a source without
seasons; the service layer maps it to and from None.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from trackd.store.models import SnapshotRow, new_id, table_of, utcnow
from trackd.store.upsert import chunked

DELETE_BATCH = 500
# Subjects per statement of the bulk functions: within every backend's bound-parameter limit.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class HistoryKey:
    tenant_id: str
    source: str
    subject: str
    season: str = ""

    def _where(self) -> Any:
        return and_(
            SnapshotRow.tenant_id == self.tenant_id,
            SnapshotRow.source == self.source,
            SnapshotRow.subject == self.subject,
            SnapshotRow.season == self.season,
        )


async def lock_history(session: AsyncSession, key: HistoryKey) -> None:
    """Serialize writers of one history until the transaction ends (PostgreSQL).

    Two pollers recording the same subject at once would otherwise both diff against the
    same predecessor. SQLite needs nothing: it has one writer at a time, and a reader that
    raced one gets an error instead of a wrong sequence (the unique key is the backstop).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    name = f"trackd.snapshots\x1f{key.tenant_id}\x1f{key.source}\x1f{key.subject}\x1f{key.season}"
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name}
    )


async def latest(session: AsyncSession, key: HistoryKey) -> SnapshotRow | None:
    row: SnapshotRow | None = await session.scalar(
        select(SnapshotRow).where(key._where()).order_by(SnapshotRow.seq.desc()).limit(1)
    )
    return row


async def insert(
    session: AsyncSession,
    key: HistoryKey,
    *,
    seq: int,
    taken_at: datetime,
    data: dict[str, Any],
    meta: dict[str, Any],
    digest: str,
    changes: list[dict[str, Any]] | None,
) -> SnapshotRow:
    row = SnapshotRow(
        id=new_id(),
        tenant_id=key.tenant_id,
        source=key.source,
        subject=key.subject,
        season=key.season,
        seq=seq,
        taken_at=taken_at,
        data=data,
        meta=meta,
        digest=digest,
        changes=changes,
    )
    session.add(row)
    await session.flush()
    return row


async def prune_history(
    session: AsyncSession,
    key: HistoryKey,
    *,
    newest_seq: int,
    keep: int,
    cutoff: datetime,
    batch: int = DELETE_BATCH,
) -> int:
    """Delete up to `batch` snapshots of one history beyond `keep` or taken before `cutoff`,
    never the newest. A backlog (after `keep` was lowered) drains over successive calls."""
    expired = (
        select(SnapshotRow.id)
        .where(
            key._where(),
            SnapshotRow.seq < newest_seq,
            (SnapshotRow.seq <= newest_seq - keep) | (SnapshotRow.taken_at < cutoff),
        )
        .order_by(SnapshotRow.seq)
        .limit(batch)
    )
    ids = list(await session.scalars(expired))
    if ids:
        await session.execute(delete(SnapshotRow).where(SnapshotRow.id.in_(ids)))
    return len(ids)


async def prune_expired(
    session: AsyncSession, source: str, cutoff: datetime, *, batch: int = DELETE_BATCH
) -> int:
    """Delete up to `batch` snapshots of `source`, of any tenant, taken before `cutoff` that
    are not the newest of their history: for histories that stopped receiving snapshots."""
    newer = aliased(SnapshotRow)
    has_newer = exists().where(
        newer.tenant_id == SnapshotRow.tenant_id,
        newer.source == SnapshotRow.source,
        newer.subject == SnapshotRow.subject,
        newer.season == SnapshotRow.season,
        newer.seq > SnapshotRow.seq,
    )
    ids = list(
        await session.scalars(
            select(SnapshotRow.id)
            .where(SnapshotRow.source == source, SnapshotRow.taken_at < cutoff, has_newer)
            .limit(batch)
        )
    )
    if ids:
        await session.execute(delete(SnapshotRow).where(SnapshotRow.id.in_(ids)))
    return len(ids)


async def sources(session: AsyncSession) -> list[str]:
    """Every source that has snapshots, of any tenant."""
    return list(await session.scalars(select(SnapshotRow.source).distinct()))


async def page(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    subject: str,
    *,
    season: str | None,
    limit: int,
    before: uuid.UUID | None = None,
) -> list[SnapshotRow]:
    """Snapshots of a subject, newest first; `season` None means every season."""
    query = select(SnapshotRow).where(
        SnapshotRow.tenant_id == tenant_id,
        SnapshotRow.source == source,
        SnapshotRow.subject == subject,
    )
    if season is not None:
        query = query.where(SnapshotRow.season == season)
    if before is not None:
        query = query.where(SnapshotRow.id < before)
    # Ids are time-ordered (UUIDv7), so they order snapshots across seasons as recorded.
    rows = await session.scalars(query.order_by(SnapshotRow.id.desc()).limit(limit))
    return list(rows)


async def count(session: AsyncSession, key: HistoryKey) -> int:
    total = await session.scalar(select(func.count()).select_from(SnapshotRow).where(key._where()))
    return int(total or 0)


async def seasons(session: AsyncSession, tenant_id: str, source: str, subject: str) -> list[str]:
    """The seasons a subject has snapshots of ("" for a source without seasons)."""
    rows = await session.scalars(
        select(SnapshotRow.season)
        .where(
            SnapshotRow.tenant_id == tenant_id,
            SnapshotRow.source == source,
            SnapshotRow.subject == subject,
        )
        .distinct()
    )
    return list(rows)


async def history(session: AsyncSession, key: HistoryKey, *, limit: int) -> list[SnapshotRow]:
    """The newest `limit` snapshots of one history, oldest first (for a chart over time)."""
    rows = list(
        await session.scalars(
            select(SnapshotRow).where(key._where()).order_by(SnapshotRow.seq.desc()).limit(limit)
        )
    )
    rows.reverse()
    return rows


async def in_range(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    subject: str,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[SnapshotRow]:
    """A subject's snapshots of every season taken in [since, until), newest taken first;
    `after` is the (taken_at, id) of the last row of the previous page."""
    query = select(SnapshotRow).where(
        SnapshotRow.tenant_id == tenant_id,
        SnapshotRow.source == source,
        SnapshotRow.subject == subject,
    )
    if since is not None:
        query = query.where(SnapshotRow.taken_at >= since)
    if until is not None:
        query = query.where(SnapshotRow.taken_at < until)
    if after is not None:
        at, row_id = after
        query = query.where(
            (SnapshotRow.taken_at < at) | ((SnapshotRow.taken_at == at) & (SnapshotRow.id < row_id))
        )
    query = query.order_by(SnapshotRow.taken_at.desc(), SnapshotRow.id.desc()).limit(limit)
    return list(await session.scalars(query))


async def taken_between(
    session: AsyncSession, key: HistoryKey, start: datetime, end: datetime
) -> set[datetime]:
    """The `taken_at` of one history's snapshots in [start, end]."""
    rows = await session.scalars(
        select(SnapshotRow.taken_at).where(
            key._where(), SnapshotRow.taken_at >= start, SnapshotRow.taken_at <= end
        )
    )
    return set(rows)


async def newest_seqs(
    session: AsyncSession, tenant_id: str, source: str, season: str, subjects: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """Subject → (newest seq, its digest) of the histories of `subjects` that have one.

    The newest of each history is found through the history's unique index (one probe per
    subject), whatever the length of the histories or the freshness of the table's statistics.
    """
    newer = aliased(SnapshotRow)
    newest = (
        select(func.max(newer.seq))
        .where(
            newer.tenant_id == SnapshotRow.tenant_id,
            newer.source == SnapshotRow.source,
            newer.subject == SnapshotRow.subject,
            newer.season == SnapshotRow.season,
        )
        .scalar_subquery()
    )
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunked(list(subjects), CHUNK):
        rows = await session.execute(
            select(SnapshotRow.subject, SnapshotRow.seq, SnapshotRow.digest).where(
                SnapshotRow.tenant_id == tenant_id,
                SnapshotRow.source == source,
                SnapshotRow.season == season,
                SnapshotRow.subject.in_(chunk),
                SnapshotRow.seq == newest,
            )
        )
        found.update({subject: (seq, digest) for subject, seq, digest in rows.all()})
    return found


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert snapshot rows (every column but `id` and `recorded_at` given) in batches."""
    table = table_of(SnapshotRow)
    now = utcnow()
    for chunk in chunked(list(rows), CHUNK):
        await session.execute(
            table.insert(), [{"id": new_id(), "recorded_at": now, **row} for row in chunk]
        )


async def prune_many(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    season: str,
    subjects: Sequence[str],
    *,
    keep: int,
    cutoff: datetime,
) -> int:
    """Apply retention to many histories of one source at once: delete the snapshots beyond
    the newest `keep` or taken before `cutoff`, never a history's newest."""
    newer = aliased(SnapshotRow)
    newest = (
        select(func.max(newer.seq))
        .where(
            newer.tenant_id == SnapshotRow.tenant_id,
            newer.source == SnapshotRow.source,
            newer.season == SnapshotRow.season,
            newer.subject == SnapshotRow.subject,
        )
        .scalar_subquery()
    )
    deleted = 0
    for chunk in chunked(list(subjects), CHUNK):
        result = await session.execute(
            delete(SnapshotRow).where(
                SnapshotRow.tenant_id == tenant_id,
                SnapshotRow.source == source,
                SnapshotRow.season == season,
                SnapshotRow.subject.in_(chunk),
                SnapshotRow.seq < newest,
                (SnapshotRow.seq <= newest - keep) | (SnapshotRow.taken_at < cutoff),
            )
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted
