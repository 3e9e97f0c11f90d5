"""Journal entries and user settings, always of one tenant's one user."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.journal import JournalEntryIn
from trackd.store.models import JournalEntryRow, UserSettingsRow, new_id, table_of, utcnow
from trackd.store.upsert import insert_ignore, upsert

Saved = Literal["new", "updated", "unchanged"]
DEFAULT_TIMEZONE = "UTC"


def _mine(tenant_id: str, user_id: str) -> ColumnElement[bool]:
    return and_(JournalEntryRow.tenant_id == tenant_id, JournalEntryRow.user_id == user_id)


async def get(
    session: AsyncSession, tenant_id: str, user_id: str, entry_id: str
) -> JournalEntryRow | None:
    """The user's entry with its own id `entry_id`, or None."""
    return await session.scalar(
        select(JournalEntryRow).where(
            _mine(tenant_id, user_id), JournalEntryRow.entry_id == entry_id
        )
    )


async def at(
    session: AsyncSession, tenant_id: str, user_id: str, moment: datetime
) -> JournalEntryRow | None:
    """The user's first-stored entry taken at `moment`, or None."""
    return await session.scalar(
        select(JournalEntryRow)
        .where(_mine(tenant_id, user_id), JournalEntryRow.timestamp == moment)
        .order_by(JournalEntryRow.created_at, JournalEntryRow.id)
        .limit(1)
    )


def _values(entry: JournalEntryIn) -> dict[str, object]:
    return {
        "timestamp": entry.timestamp,
        "mood_score": entry.mood_score,
        "energy_score": entry.energy_score,
        "sleep_hours": entry.sleep_hours,
        "symptoms": list(entry.symptoms),
        "text": entry.text,
        "metrics": dict(entry.metrics),
    }


def _same(row: JournalEntryRow, values: dict[str, object]) -> bool:
    return all(getattr(row, name) == value for name, value in values.items())


async def save(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    entry_id: str,
    entry: JournalEntryIn,
    *,
    existing: JournalEntryRow | None = None,
) -> tuple[JournalEntryRow, Saved]:
    """Store `entry` as the user's entry `entry_id`: a new row, or the one stored under that
    id (or `existing`, found another way) updated; unchanged when it already says the same."""
    values = _values(entry)
    row = existing or await get(session, tenant_id, user_id, entry_id)
    if row is None:
        # INSERT ... ON CONFLICT DO NOTHING rather than a savepoint: the same id stored
        # meanwhile by another request is then updated below, and nothing is committed
        # before the caller commits (SQLite commits a savepoint begun outside a transaction).
        now = utcnow()
        inserted = await session.scalar(
            insert_ignore(session, table_of(JournalEntryRow), ["tenant_id", "user_id", "entry_id"])
            .values(
                id=new_id(),
                tenant_id=tenant_id,
                user_id=user_id,
                entry_id=entry_id,
                created_at=now,
                updated_at=now,
                **values,
            )
            .returning(JournalEntryRow.id)
        )
        row = await get(session, tenant_id, user_id, entry_id)
        if row is None:  # pragma: no cover - the insert or the other request stored it
            raise LookupError(f"journal entry {entry_id!r} vanished while being stored")
        if inserted is not None:
            return row, "new"
    if _same(row, values):
        return row, "unchanged"
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    await session.flush()
    return row, "updated"


async def remove(session: AsyncSession, tenant_id: str, user_id: str, entry_id: str) -> bool:
    """Delete the user's entry `entry_id`; False when there was none."""
    result = await session.execute(
        delete(JournalEntryRow).where(
            _mine(tenant_id, user_id), JournalEntryRow.entry_id == entry_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def page(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[JournalEntryRow]:
    """The user's entries newest first, `since` <= timestamp < `until`, after the cursor
    `after` (timestamp and row id of the last one shown), at most `limit`."""
    query = select(JournalEntryRow).where(_mine(tenant_id, user_id))
    if since is not None:
        query = query.where(JournalEntryRow.timestamp >= since)
    if until is not None:
        query = query.where(JournalEntryRow.timestamp < until)
    if after is not None:
        moment, row_id = after
        query = query.where(
            or_(
                JournalEntryRow.timestamp < moment,
                and_(JournalEntryRow.timestamp == moment, JournalEntryRow.id < row_id),
            )
        )
    query = query.order_by(JournalEntryRow.timestamp.desc(), JournalEntryRow.id.desc())
    return list((await session.scalars(query.limit(limit))).all())


async def between(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    start: datetime | None,
    end: datetime | None,
) -> list[JournalEntryRow]:
    """Every entry of the user with `start` <= timestamp < `end`, oldest first."""
    query = select(JournalEntryRow).where(_mine(tenant_id, user_id))
    if start is not None:
        query = query.where(JournalEntryRow.timestamp >= start)
    if end is not None:
        query = query.where(JournalEntryRow.timestamp < end)
    query = query.order_by(JournalEntryRow.timestamp, JournalEntryRow.id)
    return list((await session.scalars(query)).all())


async def summary(
    session: AsyncSession, tenant_id: str, user_id: str, until: datetime
) -> tuple[int, datetime | None, datetime | None]:
    """How many entries the user has before `until`, and the first and last one's time."""
    query = select(
        func.count(), func.min(JournalEntryRow.timestamp), func.max(JournalEntryRow.timestamp)
    ).where(_mine(tenant_id, user_id), JournalEntryRow.timestamp < until)
    found = (await session.execute(query)).one()
    return int(found[0] or 0), found[1], found[2]


def _settings(tenant_id: str, user_id: str) -> Select[UserSettingsRow]:
    return select(UserSettingsRow).where(
        UserSettingsRow.tenant_id == tenant_id, UserSettingsRow.user_id == user_id
    )


async def timezone(session: AsyncSession, tenant_id: str, user_id: str) -> str:
    """The user's time zone (IANA); UTC until the user sets one."""
    row = await session.scalar(_settings(tenant_id, user_id))
    return row.timezone if row is not None else DEFAULT_TIMEZONE


async def set_timezone(session: AsyncSession, tenant_id: str, user_id: str, zone: str) -> None:
    """Store the user's time zone (the caller checked it is an IANA name)."""
    now = utcnow()
    await session.execute(
        upsert(
            session,
            table_of(UserSettingsRow),
            ["tenant_id", "user_id"],
            replace=["timezone", "updated_at"],
        ).values(
            id=new_id(),
            tenant_id=tenant_id,
            user_id=user_id,
            timezone=zone,
            created_at=now,
            updated_at=now,
        )
    )
