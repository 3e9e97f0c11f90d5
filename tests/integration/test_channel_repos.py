"""Channel, subscription and outbox repositories on SQLite and PostgreSQL: tenant isolation,
masking, idempotent subscribe and enqueue, and fenced outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.channels import InvalidChannel
from trackd.errors import NotFound
from trackd.store.repos import channels
from trackd.store.repos import outbox as repo
from trackd.store.repos.channels import ChannelView

DISCORD = "https://discord.com/api/webhooks/123456789012/abcdefghijklmnopqrstuvwxyz-_0123"


async def test_channels_belong_to_their_tenant(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        mine = await channels.create_channel(session, "t1", kind="discord", url=DISCORD)
        assert await channels.get_channel(session, "t2", mine.id) is None
        assert await channels.list_channels(session, "t2") == []
        with pytest.raises(NotFound):
            await channels.subscribe(session, "t2", mine.id, source="game")
        with pytest.raises(NotFound):
            await channels.set_enabled(session, "t2", mine.id, False)
        assert not await channels.delete_channel(session, "t2", mine.id)
        assert await channels.subscribed_channels(session, "t2", "game", "p1") == []
        assert [c.id for c in await channels.list_channels(session, "t1")] == [mine.id]


async def test_views_mask_the_url_and_hide_the_secret(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        row = await channels.create_channel(
            session,
            "t1",
            kind="webhook",
            url="https://hooks.example/p/SECRET?key=SECRET",
            secret="sixteen-chars-or-more",
        )
        view = ChannelView.of(row)
    assert view.url == "https://hooks.example/…"
    assert view.name == "webhook https://hooks.example/…"
    assert view.signed
    assert "SECRET" not in repr(view) and "sixteen" not in repr(view)


async def test_bad_channels_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        with pytest.raises(InvalidChannel, match="only webhook channels are signed"):
            await channels.create_channel(
                session, "t1", kind="discord", url=DISCORD, secret="sixteen-chars-or-more"
            )
        with pytest.raises(InvalidChannel, match="16 to 512"):
            await channels.create_channel(
                session, "t1", kind="webhook", url="https://h.example/", secret="short"
            )
        with pytest.raises(InvalidChannel, match="unknown channel kind"):
            await channels.create_channel(session, "t1", kind="sms", url="https://h.example/")


async def test_ensure_and_subscribe_are_idempotent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        first = await channels.ensure_channel(
            session, "t1", kind="discord", url=DISCORD, owner_user_id="u1"
        )
        again = await channels.ensure_channel(
            session, "t1", kind="discord", url=DISCORD, owner_user_id="u1"
        )
        someone_else = await channels.ensure_channel(
            session, "t1", kind="discord", url=DISCORD, owner_user_id="u2"
        )
        assert again.id == first.id and someone_else.id != first.id

        a = await channels.subscribe(session, "t1", first.id, subject="p1", user_id="u1")
        b = await channels.subscribe(session, "t1", first.id, subject="p1", user_id="u1")
        assert a.id == b.id
        assert len(await channels.subscriptions(session, "t1", first.id)) == 1
        assert [c.id for c in await channels.subscribed_channels(session, "t1", "x", "p1")] == [
            first.id
        ]
        assert await channels.unsubscribe(session, "t1", first.id, subject="p1")
        assert await channels.subscribed_channels(session, "t1", "x", "p1") == []


async def test_enqueue_is_idempotent_per_tenant_and_outcomes_are_fenced(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    message = repo.Message("bus", "change-1", "snapshot.changed", {"n": 1})
    async with sessions() as session:
        await repo.enqueue(session, "t1", [message])
        await repo.enqueue(session, "t1", [message])
        await repo.enqueue(session, "t2", [message])
        await session.commit()
        assert await repo.counts(session, "t1") == {"pending": 1}

        now = datetime.now(UTC)
        lease = timedelta(seconds=30)
        claimed = await repo.claim(session, worker="a", limit=10, lease=lease, now=now)
        assert sorted(c.tenant_id for c in claimed) == ["t1", "t2"]
        assert all(c.attempts == 1 for c in claimed)
        # Nothing is due again until the lease passes; then another notifier takes them.
        assert await repo.claim(session, worker="b", limit=10, lease=lease, now=now) == []
        later = now + lease + timedelta(seconds=1)
        retaken = await repo.claim(session, worker="b", limit=10, lease=lease, now=later)
        assert len(retaken) == 2 and all(c.attempts == 2 for c in retaken)

        # The first notifier's late outcome is refused; the current holder's is kept.
        assert not await repo.mark_sent(session, claimed[0])
        assert await repo.mark_sent(session, retaken[0])
        assert await repo.mark_failed(session, retaken[1], error="boom", retry_at=None)
        await session.commit()
        outcomes = [*(await repo.counts(session, "t1")).items()]
        outcomes += (await repo.counts(session, "t2")).items()
        assert sorted(outcomes) == [("dead", 1), ("sent", 1)]

        assert await repo.prune_finished(session, datetime.now(UTC) + timedelta(days=1)) == 2
        await session.commit()
        assert await repo.counts(session, "t1") == {} and await repo.counts(session, "t2") == {}
