"""Recording snapshots on SQLite and PostgreSQL: history numbering, change detection, the
outbox rows a change writes in the same transaction, retention, and paging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.history import FieldChange
from trackd.settings import Settings, SourceRetention
from trackd.snapshots.service import (
    latest_snapshot,
    list_snapshots,
    prune_snapshots,
    record_snapshot,
)
from trackd.sources.base import Snapshot
from trackd.store.engine import create_engine, session_factory
from trackd.store.models import OutboxRow, SnapshotRow
from trackd.store.repos import channels

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def snap(data: dict[str, Any], minutes: int = 0, **kw: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "subject": "player-1",
        "source": "game",
        "season": None,
        "taken_at": T0 + timedelta(minutes=minutes),
        **kw,
    }
    return Snapshot(data=data, **fields)


@pytest.fixture
def settings() -> Settings:
    return Settings(snapshot_keep=1000, snapshot_keep_days=365)


async def outbox(session: AsyncSession) -> list[OutboxRow]:
    return list(await session.scalars(select(OutboxRow).order_by(OutboxRow.idempotency_key)))


async def test_a_change_is_found_against_the_previous_snapshot(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        assert (
            await record_snapshot(
                session, "t1", snap({"rank": {"tier": "Gold"}, "w": 1}), settings=settings
            )
            is None
        )
        same = snap({"w": 1, "rank": {"tier": "Gold"}}, minutes=5)
        assert await record_snapshot(session, "t1", same, settings=settings) is None
        change = await record_snapshot(
            session, "t1", snap({"rank": {"tier": "Plat"}, "w": 1}, minutes=10), settings=settings
        )
        await session.commit()

    assert change is not None
    assert change.changes == (FieldChange("rank.tier", "changed", "Gold", "Plat"),)
    assert change.seq == 3
    assert change.previous_taken_at == T0 + timedelta(minutes=5)
    assert change.taken_at == T0 + timedelta(minutes=10)
    async with sessions() as session:
        page = await list_snapshots(session, "t1", "game", "player-1")
        assert [s.seq for s in page.items] == [3, 2, 1]
        assert page.items[0].changes == change.changes
        assert page.items[1].changes == ()
        [bus] = await outbox(session)
    # No channel is subscribed: the change still goes onto the bus, once.
    assert bus.kind == "bus"
    assert bus.idempotency_key == f"snapshot.changed:{change.id}"
    assert bus.payload["type"] == "snapshot.changed"
    assert bus.payload["topic"] == "system-events"
    assert bus.payload["tenant_id"] == "t1"
    assert bus.payload["data"]["changes"] == [
        {"path": "rank.tier", "kind": "changed", "old": "Gold", "new": "Plat"}
    ]


async def test_histories_are_per_tenant_source_subject_and_season(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        await record_snapshot(session, "t1", snap({"v": 1}, season="24"), settings=settings)
        await record_snapshot(session, "t1", snap({"v": 1}, season="25"), settings=settings)
        # A different value in another season, tenant or subject is a first snapshot there.
        assert (
            await record_snapshot(session, "t1", snap({"v": 2}, season="26"), settings=settings)
            is None
        )
        assert (
            await record_snapshot(session, "t2", snap({"v": 2}, season="24"), settings=settings)
            is None
        )
        assert (
            await record_snapshot(session, "t1", snap({"v": 2}, subject="p2"), settings=settings)
            is None
        )
        change = await record_snapshot(
            session, "t1", snap({"v": 3}, minutes=1, season="24"), settings=settings
        )
        await session.commit()

        assert change is not None and change.season == "24"
        everything = await list_snapshots(session, "t1", "game", "player-1")
        assert [s.season for s in everything.items] == ["24", "26", "25", "24"]
        season_24 = await list_snapshots(session, "t1", "game", "player-1", season="24")
        assert [s.data for s in season_24.items] == [{"v": 3}, {"v": 1}]
        assert (await list_snapshots(session, "t1", "game", "player-1", season=None)).items == []
        assert (await list_snapshots(session, "t2", "game", "player-1")).items[0].season == "24"
        newest = await latest_snapshot(session, "t1", "game", "p2")
        assert newest is not None and newest.season is None and newest.data == {"v": 2}


async def test_paging_newest_first(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        for i in range(7):
            await record_snapshot(session, "t1", snap({"i": i}, minutes=i), settings=settings)
        await session.commit()
        seen: list[int] = []
        before = None
        while True:
            page = await list_snapshots(session, "t1", "game", "player-1", limit=3, before=before)
            seen += [s.data["i"] for s in page.items]
            if page.next_before is None:
                break
            before = page.next_before
    assert seen == [6, 5, 4, 3, 2, 1, 0]


async def test_subscribed_channels_get_one_message_each_in_the_same_transaction(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        hook = await channels.create_channel(
            session, "t1", kind="webhook", url="https://hooks.example/x", owner_user_id="u1"
        )
        discord = await channels.create_channel(
            session,
            "t1",
            kind="discord",
            url="https://discord.com/api/webhooks/123456789/abcdefghijklmnopqrstuvwxyz",
            options={"fields": ["rank"]},
        )
        other_tenant = await channels.create_channel(
            session, "t2", kind="webhook", url="https://hooks.example/y"
        )
        await channels.subscribe(session, "t1", hook.id, source="game", subject="player-1")
        await channels.subscribe(session, "t1", hook.id, source="game")  # overlaps: still once
        await channels.subscribe(session, "t1", discord.id, subject="player-1")
        await channels.subscribe(session, "t2", other_tenant.id, source="game")
        await record_snapshot(session, "t1", snap({"rank": 1, "wins": 3}), settings=settings)
        await session.commit()

    async with sessions() as session:
        wins_only = await record_snapshot(
            session, "t1", snap({"rank": 1, "wins": 4}, minutes=1), settings=settings
        )
        await session.rollback()
    async with sessions() as session:
        # Rolled back with the snapshot: neither exists.
        assert await outbox(session) == []
        assert wins_only is not None
        wins_only = await record_snapshot(
            session, "t1", snap({"rank": 1, "wins": 4}, minutes=1), settings=settings
        )
        ranked = await record_snapshot(
            session, "t1", snap({"rank": 2, "wins": 4}, minutes=2), settings=settings
        )
        silent = await record_snapshot(
            session, "t1", snap({"rank": 3, "wins": 4}, minutes=3), notify=False, settings=settings
        )
        await session.commit()
        rows = await outbox(session)

    assert wins_only and ranked and silent
    by_change = {
        c.id: sorted(r.kind for r in rows if str(c.id) in r.idempotency_key)
        for c in (wins_only, ranked, silent)
    }
    # Discord only wants rank; notify=False queues the bus event alone.
    assert by_change == {
        wins_only.id: ["bus", "webhook"],
        ranked.id: ["bus", "discord", "webhook"],
        silent.id: ["bus"],
    }
    assert all(r.tenant_id == "t1" for r in rows)
    [hook_row] = [
        r for r in rows if r.channel_id == hook.id and str(ranked.id) in r.idempotency_key
    ]
    assert hook_row.idempotency_key == f"{ranked.id}:{hook.id}"
    assert hook_row.payload["changes"] == [{"path": "rank", "kind": "changed", "old": 1, "new": 2}]
    assert hook_row.status == "pending" and hook_row.attempts == 0 and hook_row.max_attempts == 8


async def test_retention_by_count_keeps_the_newest(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.snapshot_retention = {"game": SourceRetention(keep=3)}
    async with sessions() as session:
        for i in range(6):
            await record_snapshot(session, "t1", snap({"i": i}, minutes=i), settings=settings)
            await record_snapshot(
                session, "t1", snap({"i": i}, minutes=i, source="other"), settings=settings
            )
        await session.commit()
        kept = await list_snapshots(session, "t1", "game", "player-1")
        other = await list_snapshots(session, "t1", "other", "player-1")
    assert [s.seq for s in kept.items] == [6, 5, 4]
    assert len(other.items) == 6  # the default keeps 1000


async def test_retention_by_age_never_drops_the_newest(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.snapshot_keep_days = 1
    old = datetime.now(UTC) - timedelta(days=3)
    async with sessions() as session:
        for i in range(3):
            await record_snapshot(
                session, "t1", snap({"i": i}, taken_at=old + timedelta(hours=i)), settings=settings
            )
        await session.commit()
        # Every snapshot is older than a day, but the newest is what the next one is diffed
        # against: it stays.
        assert [s.seq for s in (await list_snapshots(session, "t1", "game", "player-1")).items] == [
            3
        ]
        change = await record_snapshot(
            session, "t1", snap({"i": 9}, taken_at=datetime.now(UTC)), settings=settings
        )
        await session.commit()
        assert change is not None and change.changes[0].old == 2
        assert [s.seq for s in (await list_snapshots(session, "t1", "game", "player-1")).items] == [
            4
        ]


async def test_the_sweep_prunes_histories_that_stopped(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        for i in range(4):
            await record_snapshot(session, "t1", snap({"i": i}, minutes=i), settings=settings)
            await record_snapshot(
                session, "t2", snap({"i": i}, minutes=i, subject="p9"), settings=settings
            )
        await session.commit()
        later = T0 + timedelta(days=400)
        assert await prune_snapshots(session, settings, now=later) == 6
        await session.commit()
        rows = list(await session.scalars(select(SnapshotRow.seq).order_by(SnapshotRow.seq)))
    assert rows == [4, 4]


async def test_malformed_snapshots_are_refused(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match="time zone"):
            await record_snapshot(
                session, "t1", snap({}, taken_at=datetime(2026, 1, 1)), settings=settings
            )
        with pytest.raises(TypeError):
            await record_snapshot(session, "t1", snap({"at": T0}), settings=settings)
        with pytest.raises(ValueError, match="subject"):
            await record_snapshot(session, "t1", snap({}, subject=""), settings=settings)
        count = await session.scalar(select(func.count()).select_from(SnapshotRow))
    assert count == 0


@pytest.mark.postgres
async def test_concurrent_recorders_of_one_history_take_turns(
    postgres_databases: Callable[[], AbstractAsyncContextManager[str]],
) -> None:
    settings = Settings()
    async with postgres_databases() as url:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            async with sessions() as session:
                await record_snapshot(session, "t1", snap({"v": 0}), settings=settings)
                await session.commit()

            async def record(v: int) -> Any:
                async with sessions() as session:
                    change = await record_snapshot(
                        session, "t1", snap({"v": v}, minutes=v), settings=settings
                    )
                    await asyncio.sleep(0.05)  # hold the history while the others wait
                    await session.commit()
                    return change

            changes = await asyncio.gather(*(record(v) for v in range(1, 6)))
            async with sessions() as session:
                page = await list_snapshots(session, "t1", "game", "player-1")
        finally:
            await engine.dispose()
    assert sorted(c.seq for c in changes) == [2, 3, 4, 5, 6]
    # Each change was found against the snapshot committed just before it.
    by_seq = {s.seq: s.data["v"] for s in page.items}
    for change in changes:
        assert change.changes[0].old == by_seq[change.seq - 1]
        assert change.changes[0].new == by_seq[change.seq]
