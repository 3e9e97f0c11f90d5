"""League tracker rows, their latest polls and their seasons' latest snapshots.

Every function takes the tenant. Live trackers are those not soft-deleted; the partial unique
index over live rows lets a deleted tracker's URL be registered again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.league import ScrapingStatus, TrackerProfile, poll_statuses
from trackd.domain.polls import UNFINISHED, WAITING
from trackd.errors import Conflict
from trackd.store.models import PollRow, SnapshotRow, TrackerGuild, TrackerRow, new_id

SOURCE = "rocket_league"


class TrackerSort(StrEnum):
    CREATED = "createdAt"
    UPDATED = "updatedAt"
    PLATFORM = "platform"
    NAME = "displayName"


@dataclass(frozen=True, slots=True)
class NewTracker:
    user_id: str
    profile: TrackerProfile
    guild_id: str | None = None
    display_name: str | None = None
    user_data: Mapping[str, Any] | None = None
    created_by: str | None = None


async def create_many(
    session: AsyncSession, tenant_id: str, trackers: Sequence[NewTracker], *, now: datetime
) -> list[TrackerRow]:
    """Insert live trackers, all or none.

    Raises:
        Conflict: a live tracker of the tenant has one of these profiles already (two
            registrations raced past the caller's check).
    """
    rows = [
        TrackerRow(
            id=new_id(),
            tenant_id=tenant_id,
            user_id=t.user_id,
            guild_id=t.guild_id,
            platform=t.profile.platform,
            player_id=t.profile.player_id,
            url=t.profile.url,
            url_key=t.profile.key,
            display_name=t.display_name,
            is_active=True,
            user_data=dict(t.user_data or {}),
            created_by=t.created_by,
            created_at=now,
            updated_at=now,
        )
        for t in trackers
    ]
    # A savepoint, so that the caller's transaction stays usable after a lost race.
    try:
        async with session.begin_nested():
            session.add_all(rows)
    except IntegrityError:
        raise Conflict("one of these trackers was registered a moment ago") from None
    return rows


async def get(
    session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID, *, for_update: bool = False
) -> TrackerRow | None:
    """A live tracker of the tenant."""
    query = select(TrackerRow).where(
        TrackerRow.tenant_id == tenant_id,
        TrackerRow.id == tracker_id,
        TrackerRow.deleted_at.is_(None),
    )
    if for_update:
        query = query.with_for_update()
    row: TrackerRow | None = await session.scalar(query)
    return row


async def live_count(session: AsyncSession, tenant_id: str, user_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(TrackerRow)
        .where(
            TrackerRow.tenant_id == tenant_id,
            TrackerRow.user_id == user_id,
            TrackerRow.deleted_at.is_(None),
        )
    )
    return int(count or 0)


async def live_by_keys(
    session: AsyncSession, tenant_id: str, keys: Collection[str]
) -> list[TrackerRow]:
    """The live trackers of the tenant with these profile keys (platform/casefolded id)."""
    if not keys:
        return []
    rows = await session.scalars(
        select(TrackerRow).where(
            TrackerRow.tenant_id == tenant_id,
            TrackerRow.url_key.in_(list(keys)),
            TrackerRow.deleted_at.is_(None),
        )
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class TrackerFilter:
    user_id: str | None = None
    guild_id: str | None = None
    platform: str | None = None
    status: ScrapingStatus | None = None
    active: bool | None = None


def _filtered(tenant_id: str, where: TrackerFilter, dialect: str) -> Select[TrackerRow]:
    query = select(TrackerRow).where(
        TrackerRow.tenant_id == tenant_id, TrackerRow.deleted_at.is_(None)
    )
    if where.user_id is not None:
        query = query.where(TrackerRow.user_id == where.user_id)
    if where.guild_id is not None:
        query = query.where(TrackerRow.guild_id == where.guild_id)
    if where.platform is not None:
        query = query.where(TrackerRow.platform == where.platform)
    if where.active is not None:
        query = query.where(TrackerRow.is_active.is_(where.active))
    if where.status is not None:
        latest = _latest_polls(tenant_id).subquery()
        joined = query.outerjoin(latest, _same_tracker(latest.c.tracker_id, dialect))
        statuses = poll_statuses(where.status)
        condition: ColumnElement[bool] = latest.c.status.in_(statuses)
        if where.status is ScrapingStatus.PENDING:
            condition = or_(condition, latest.c.status.is_(None))
        query = joined.where(condition)
    return query


async def search(
    session: AsyncSession,
    tenant_id: str,
    where: TrackerFilter,
    *,
    sort: TrackerSort = TrackerSort.CREATED,
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[TrackerRow], int]:
    """A page of live trackers and how many match in all."""
    query = _filtered(tenant_id, where, session.get_bind().dialect.name)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    column = {
        TrackerSort.CREATED: TrackerRow.created_at,
        TrackerSort.UPDATED: TrackerRow.updated_at,
        TrackerSort.PLATFORM: TrackerRow.platform,
        TrackerSort.NAME: func.coalesce(TrackerRow.display_name, TrackerRow.player_id),
    }[sort]
    order = column.desc() if descending else column.asc()
    tiebreak = TrackerRow.id.desc() if descending else TrackerRow.id.asc()
    rows = await session.scalars(query.order_by(order, tiebreak).limit(limit).offset(offset))
    return list(rows), int(total or 0)


async def page(
    session: AsyncSession,
    tenant_id: str,
    where: TrackerFilter,
    *,
    limit: int = 50,
    before: uuid.UUID | None = None,
) -> list[TrackerRow]:
    """Live trackers, newest registration first (ids are time-ordered); `before` continues
    after the last tracker of the previous page, so a page stays right while trackers come."""
    query = _filtered(tenant_id, where, session.get_bind().dialect.name)
    if before is not None:
        query = query.where(TrackerRow.id < before)
    return list(await session.scalars(query.order_by(TrackerRow.id.desc()).limit(limit)))


async def soft_delete(session: AsyncSession, row: TrackerRow, *, now: datetime) -> None:
    row.deleted_at = now
    row.updated_at = now
    row.is_active = False
    await session.flush()


# -- polls and seasons --------------------------------------------------------------------------


def _same_tracker(json_id: Any, dialect: str) -> Any:
    """SQL for "this JSON string is the tracker's id", compared as text so that a target
    holding something else is simply no match: PostgreSQL writes a uuid as str(uuid) does,
    SQLite stores it as 32 hex digits without the dashes."""
    if dialect == "postgresql":
        return json_id == cast(TrackerRow.id, String)
    return func.replace(func.lower(json_id), "-", "") == TrackerRow.id


def _poll_tracker_id() -> Any:
    return PollRow.target["tracker_id"].as_string()


def _latest_polls(tenant_id: str, tracker_ids: Collection[str] | None = None) -> Select[Any]:
    """Per tracker, its newest poll that was not cancelled: (tracker_id, poll id, status)."""
    tracker = _poll_tracker_id().label("tracker_id")
    ranked = select(
        tracker,
        PollRow.id.label("poll_id"),
        PollRow.status.label("status"),
        func.row_number()
        .over(
            partition_by=_poll_tracker_id(), order_by=(PollRow.created_at.desc(), PollRow.id.desc())
        )
        .label("rank"),
    ).where(
        PollRow.tenant_id == tenant_id,
        PollRow.source == SOURCE,
        PollRow.status != "cancelled",
    )
    if tracker_ids is not None:
        ranked = ranked.where(_poll_tracker_id().in_(list(tracker_ids)))
    inner = ranked.subquery()
    return select(inner.c.tracker_id, inner.c.poll_id, inner.c.status).where(inner.c.rank == 1)


async def latest_polls(
    session: AsyncSession, tenant_id: str, tracker_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, PollRow]:
    """Each tracker's newest poll that was not cancelled (none for a tracker never polled)."""
    if not tracker_ids:
        return {}
    keys = [str(t) for t in tracker_ids]
    picked = _latest_polls(tenant_id, keys).subquery()
    rows = await session.execute(
        select(picked.c.tracker_id, PollRow).join(PollRow, PollRow.id == picked.c.poll_id)
    )
    return {uuid.UUID(tracker): poll for tracker, poll in rows}


async def unfinished_polls(
    session: AsyncSession, tenant_id: str, tracker_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """The trackers that have a poll pending, running or blocked."""
    if not tracker_ids:
        return set()
    rows = await session.scalars(
        select(_poll_tracker_id())
        .where(
            PollRow.tenant_id == tenant_id,
            PollRow.source == SOURCE,
            PollRow.status.in_(sorted(UNFINISHED)),
            _poll_tracker_id().in_([str(t) for t in tracker_ids]),
        )
        .distinct()
    )
    return {uuid.UUID(r) for r in rows if r}


async def waiting_polls(
    session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID
) -> list[uuid.UUID]:
    """The tracker's polls that have not started: pending or blocked."""
    rows = await session.scalars(
        select(PollRow.id).where(
            PollRow.tenant_id == tenant_id,
            PollRow.source == SOURCE,
            PollRow.status.in_(sorted(WAITING)),
            _poll_tracker_id() == str(tracker_id),
        )
    )
    return list(rows)


async def season_heads(session: AsyncSession, tenant_id: str, subject: str) -> list[SnapshotRow]:
    """The newest snapshot of each of a tracker's seasons, newest season first."""
    heads = (
        select(SnapshotRow.season, func.max(SnapshotRow.seq).label("seq"))
        .where(
            SnapshotRow.tenant_id == tenant_id,
            SnapshotRow.source == SOURCE,
            SnapshotRow.subject == subject,
        )
        .group_by(SnapshotRow.season)
        .subquery()
    )
    rows = await session.scalars(
        select(SnapshotRow)
        .join(
            heads,
            (SnapshotRow.season == heads.c.season) & (SnapshotRow.seq == heads.c.seq),
        )
        .where(
            SnapshotRow.tenant_id == tenant_id,
            SnapshotRow.source == SOURCE,
            SnapshotRow.subject == subject,
        )
    )
    return sorted(rows, key=lambda r: _season_number(r.season), reverse=True)


async def last_snapshot_at(
    session: AsyncSession, tenant_id: str, subjects: Collection[str]
) -> dict[str, datetime]:
    """When each tracker's newest snapshot was taken."""
    if not subjects:
        return {}
    rows = await session.execute(
        select(SnapshotRow.subject, func.max(SnapshotRow.taken_at))
        .where(
            SnapshotRow.tenant_id == tenant_id,
            SnapshotRow.source == SOURCE,
            SnapshotRow.subject.in_(list(subjects)),
        )
        .group_by(SnapshotRow.subject)
    )
    return {subject: taken for subject, taken in rows if taken is not None}


def _season_number(season: str) -> int:
    return int(season) if season.isdigit() else -1


# -- guild settings ---------------------------------------------------------------------------


async def guild(session: AsyncSession, tenant_id: str, guild_id: str) -> TrackerGuild | None:
    row: TrackerGuild | None = await session.scalar(
        select(TrackerGuild).where(
            TrackerGuild.tenant_id == tenant_id, TrackerGuild.guild_id == guild_id
        )
    )
    return row


async def ensure_guild(
    session: AsyncSession, tenant_id: str, guild_id: str, *, now: datetime
) -> TrackerGuild:
    """The guild's settings row, created empty when there is none."""
    row = await guild(session, tenant_id, guild_id)
    if row is not None:
        return row
    row = TrackerGuild(
        id=new_id(), tenant_id=tenant_id, guild_id=guild_id, created_at=now, updated_at=now
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another request made it in the meantime: use theirs.
        existing = await guild(session, tenant_id, guild_id)
        if existing is None:  # pragma: no cover - the conflict says it exists
            raise
        return existing
    return row
