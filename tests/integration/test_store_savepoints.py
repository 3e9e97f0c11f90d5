"""Savepoints belong to the transaction around them, on SQLite as on PostgreSQL.

Each repo below writes inside `session.begin_nested()` so that a lost race leaves the caller's
transaction usable. When that savepoint is the first write of the transaction, the outer
rollback must still undo it: nothing may be stored early.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.domain.league import TrackerProfile
from trackd.domain.schedules import ScheduleKind, ScheduleSpec
from trackd.errors import Conflict
from trackd.store.models import (
    ScheduleRow,
    SystemConfiguration,
    TrackerGuild,
    TrackerRow,
    new_id,
)
from trackd.store.repos import league_trackers as trackers_repo
from trackd.store.repos import module_config, schedules

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)
TENANT = "acme"


async def write_config(s: AsyncSession) -> None:
    await module_config.write(
        s, TENANT, "rocket_league", config={"poll": 60}, is_active=True, expected_version=0
    )


async def create_schedule(s: AsyncSession) -> None:
    await schedules.create(
        s,
        TENANT,
        name="nightly",
        source="rocket_league",
        targets=[{"url": "x"}],
        spec=ScheduleSpec(ScheduleKind.ONCE, run_at=NOW + timedelta(hours=1)),
        max_attempts=3,
        timeout_seconds=None,
        owner=None,
        labels={},
        now=NOW,
    )


async def create_trackers(s: AsyncSession) -> None:
    await trackers_repo.create_many(
        s,
        TENANT,
        [trackers_repo.NewTracker(user_id="u1", profile=TrackerProfile("steam", "p1"))],
        now=NOW,
    )


async def ensure_guild(s: AsyncSession) -> None:
    await trackers_repo.ensure_guild(s, TENANT, "g1", now=NOW)


WRITES: list[tuple[Callable[[AsyncSession], Awaitable[None]], type[object]]] = [
    (write_config, SystemConfiguration),
    (create_schedule, ScheduleRow),
    (create_trackers, TrackerRow),
    (ensure_guild, TrackerGuild),
]
WRITE_IDS = [write.__name__ for write, _ in WRITES]


async def stored(sessions: Sessions, model: type[object]) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize(("write", "model"), WRITES, ids=WRITE_IDS)
async def test_a_rolled_back_transaction_keeps_nothing_its_first_savepoint_wrote(
    sessions: Sessions, write: Callable[[AsyncSession], Awaitable[None]], model: type[object]
) -> None:
    async with sessions() as s:
        await s.begin()
        await write(s)
        await s.rollback()
    assert await stored(sessions, model) == 0

    # The same write, committed, is stored: the rollback above is what undid it.
    async with sessions.begin() as s:
        await write(s)
    assert await stored(sessions, model) == 1


@pytest.mark.parametrize(("write", "model"), WRITES, ids=WRITE_IDS)
async def test_a_failing_transaction_keeps_nothing_its_first_savepoint_wrote(
    sessions: Sessions, write: Callable[[AsyncSession], Awaitable[None]], model: type[object]
) -> None:
    with pytest.raises(LookupError, match="after the savepoint"):
        async with sessions.begin() as s:
            await write(s)
            raise LookupError("after the savepoint")
    assert await stored(sessions, model) == 0


async def test_a_savepoint_opened_first_on_a_connection_is_undone_by_its_rollback(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.begin()
        async with connection.begin_nested():
            await connection.execute(
                TrackerGuild.__table__.insert().values(
                    id=new_id(),
                    tenant_id=TENANT,
                    guild_id="g1",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        await connection.rollback()
    assert await stored(async_sessionmaker(engine), TrackerGuild) == 0


async def test_a_transaction_that_has_only_read_neither_blocks_nor_loses_to_another_writer(
    sessions: Sessions,
) -> None:
    # The API reads the caller's token in the request's session, then often writes in it; the
    # ingest consumer, poller and scheduler write meanwhile. Neither side may wait for the
    # other's open transaction, or fail because the other committed first.
    async with sessions() as reader:
        await reader.begin()
        assert await reader.scalar(select(func.count()).select_from(TrackerGuild)) == 0
        async with sessions.begin() as writer:
            await trackers_repo.ensure_guild(writer, TENANT, "g1", now=NOW)
        await trackers_repo.ensure_guild(reader, TENANT, "g2", now=NOW)
        await reader.commit()
    assert await stored(sessions, TrackerGuild) == 2


async def test_a_lost_race_as_the_first_write_leaves_the_transaction_usable_and_undoable(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as s:
        await create_schedule(s)
    async with sessions() as s:
        await s.begin()
        with pytest.raises(Conflict, match="already has an active schedule"):
            await create_schedule(s)
        await ensure_guild(s)
        assert await s.scalar(select(func.count()).select_from(TrackerGuild)) == 1
        await s.rollback()
    assert await stored(sessions, ScheduleRow) == 1
    assert await stored(sessions, TrackerGuild) == 0
