"""The notifier against a real webhook receiver on 127.0.0.1, on SQLite and PostgreSQL:
delivery with the idempotency key, retries, dead rows, rate limits, the bus event, crash and
restart, and (PostgreSQL) concurrent notifiers that never take the same row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.memory import MemoryBus
from trackd.domain.events import SYSTEM_EVENTS, decode_envelope
from trackd.domain.retry import Backoff
from trackd.notify.channels.webhook import verify_signature
from trackd.notify.notifier import Notifier
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.snapshots.service import record_snapshot
from trackd.sources.base import Snapshot
from trackd.store.engine import create_engine, session_factory
from trackd.store.models import NotificationChannel, OutboxRow, TimelineEvent
from trackd.store.repos import channels
from trackd.store.repos import outbox as outbox_repo
from webfakes import Receiver, serve

NO_WAIT = Backoff(base=0, jitter=0)
SECRET = "a-signing-secret-of-some-length"


def settings(**kw: Any) -> Settings:
    values: dict[str, Any] = {
        "allow_private_fetch": True,  # the receiver is on 127.0.0.1
        "notify_poll_interval_s": 0.05,
        "notify_lease_s": 5,
        "fetch_rate_per_host": 1000,
        "fetch_burst": 100,
        **kw,
    }
    return Settings(**values)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    async with serve(receiver.app()) as base_url:
        yield base_url


async def webhook(
    sessions: async_sessionmaker[AsyncSession], url: str, *, tenant: str = "t1"
) -> uuid.UUID:
    async with sessions() as session:
        row = await channels.create_channel(
            session, tenant, kind="webhook", url=url, secret=SECRET, owner_user_id="u1"
        )
        await session.commit()
        return row.id


async def enqueue(
    sessions: async_sessionmaker[AsyncSession],
    channel_id: uuid.UUID,
    n: int = 1,
    *,
    max_attempts: int = 8,
    tenant: str = "t1",
    kind: str = "webhook",
) -> list[str]:
    keys = [f"change-{i}:{channel_id}" for i in range(n)]
    async with sessions() as session:
        await outbox_repo.enqueue(
            session,
            tenant,
            [
                outbox_repo.Message(kind, key, "snapshot.changed", {"n": i}, channel_id)
                for i, key in enumerate(keys)
            ],
            max_attempts=max_attempts,
        )
        await session.commit()
    return keys


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxRow]:
    async with sessions() as session:
        return list(await session.scalars(select(OutboxRow).order_by(OutboxRow.idempotency_key)))


async def test_a_snapshot_change_reaches_the_webhook_and_the_bus(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    receiver = Receiver()
    bus = MemoryBus()
    subscription = await bus.subscribe([SYSTEM_EVENTS], "ingest", "c1")
    published: list[bytes] = []

    async def consume() -> None:
        while True:
            messages = await subscription.fetch(10, 0.05)
            published.extend(m.body for m in messages)
            await subscription.ack(messages)

    consumer = asyncio.create_task(consume())
    async with receiving(receiver) as base_url:
        channel_id = await webhook(sessions, f"{base_url}/hook")
        async with sessions() as session:
            await channels.subscribe(session, "t1", channel_id, source="game")
            taken = datetime(2026, 3, 1, tzinfo=UTC)
            await record_snapshot(
                session, "t1", Snapshot("p1", "game", {"rank": 1}, taken), settings=Settings()
            )
            change = await record_snapshot(
                session,
                "t1",
                Snapshot("p1", "game", {"rank": 2}, taken + timedelta(hours=1)),
                settings=Settings(),
            )
            await session.commit()
        assert change is not None

        notifier = Notifier(sessions, bus, settings())
        try:
            result = await notifier.drain()
        finally:
            await notifier.aclose()
            consumer.cancel()

    assert (result.claimed, result.sent) == (2, 2)
    [delivery] = receiver.deliveries
    assert delivery.path == "/hook"
    assert delivery.headers["idempotency-key"] == f"{change.id}:{channel_id}"
    assert verify_signature(
        SECRET,
        delivery.headers["x-trackd-timestamp"],
        delivery.body,
        delivery.headers["x-trackd-signature"],
    )
    assert delivery.json()["changes"] == [{"path": "rank", "kind": "changed", "old": 1, "new": 2}]
    [event] = [decode_envelope(body) for body in published]
    assert event.type == "snapshot.changed"
    assert event.id == f"snapshot.changed:{change.id}"
    assert event.tenant_id == "t1" and event.subject == "game/p1"
    assert event.data is not None and event.data["change_id"] == str(change.id)
    assert {r.status for r in await rows(sessions)} == {"sent"}


async def test_failures_are_retried_with_the_same_key_until_sent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    receiver = Receiver(script=[500, 503])
    async with receiving(receiver) as base_url:
        channel_id = await webhook(sessions, f"{base_url}/hook")
        [key] = await enqueue(sessions, channel_id)
        notifier = Notifier(sessions, None, settings(), backoff=NO_WAIT)
        try:
            result = await notifier.drain()
        finally:
            await notifier.aclose()

    assert (result.sent, result.retried) == (1, 2)
    assert [d.headers["idempotency-key"] for d in receiver.deliveries] == [key] * 3
    assert [d.headers["x-trackd-attempt"] for d in receiver.deliveries] == ["1", "2", "3"]
    [row] = await rows(sessions)
    assert row.status == "sent" and row.attempts == 3 and row.sent_at is not None


async def test_backoff_spaces_the_retries(sessions: async_sessionmaker[AsyncSession]) -> None:
    receiver = Receiver(script=[500])
    async with receiving(receiver) as base_url:
        channel_id = await webhook(sessions, f"{base_url}/hook")
        await enqueue(sessions, channel_id)
        notifier = Notifier(sessions, None, settings(), backoff=Backoff(base=60, jitter=0))
        try:
            before = datetime.now(UTC)
            result = await notifier.drain()
        finally:
            await notifier.aclose()

    assert (result.claimed, result.retried) == (1, 1)
    [row] = await rows(sessions)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error is not None and "HTTP 500" in row.last_error
    assert before + timedelta(seconds=59) < row.next_attempt_at < before + timedelta(seconds=65)


async def test_a_message_dies_after_its_tries_or_at_once_when_hopeless(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    receiver = Receiver(script=[500] * 10)
    async with receiving(receiver) as base_url:
        failing = await webhook(sessions, f"{base_url}/hook")
        await enqueue(sessions, failing, max_attempts=3)
        notifier = Notifier(sessions, None, settings(), backoff=NO_WAIT)
        try:
            await notifier.drain()
            assert len(receiver.deliveries) == 3

            receiver.script = [404]
            gone = await webhook(sessions, f"{base_url}/gone")
            await enqueue(sessions, gone)
            await notifier.drain()
        finally:
            await notifier.aclose()

    assert len(receiver.deliveries) == 4
    by_channel = {r.channel_id: r for r in await rows(sessions)}
    assert by_channel[failing].status == "dead" and by_channel[failing].attempts == 3
    assert by_channel[gone].status == "dead" and by_channel[gone].attempts == 1
    assert "HTTP 404" in (by_channel[gone].last_error or "")
    # The URL is a credential: no error names it.
    assert all(base_url not in (r.last_error or "") for r in by_channel.values())


async def test_a_rate_limit_waits_as_told_without_using_a_try(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    receiver = Receiver(script=[429], retry_after="30")
    async with receiving(receiver) as base_url:
        channel_id = await webhook(sessions, f"{base_url}/hook")
        await enqueue(sessions, channel_id)
        notifier = Notifier(sessions, None, settings(), backoff=NO_WAIT)
        try:
            before = datetime.now(UTC)
            await notifier.drain()
        finally:
            await notifier.aclose()

    [row] = await rows(sessions)
    assert row.status == "pending" and row.attempts == 0
    assert before + timedelta(seconds=29) < row.next_attempt_at < before + timedelta(seconds=35)


async def test_disabled_channels_and_refused_addresses_are_dead_not_retried(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    receiver = Receiver()
    async with receiving(receiver) as base_url:
        disabled = await webhook(sessions, f"{base_url}/off")
        async with sessions() as session:
            await channels.set_enabled(session, "t1", disabled, False)
            await session.commit()
        private = await webhook(sessions, f"{base_url}/private")
        await enqueue(sessions, disabled)
        await enqueue(sessions, private)
        # The default: private addresses refused, and the receiver is on 127.0.0.1.
        notifier = Notifier(sessions, None, settings(allow_private_fetch=False))
        try:
            result = await notifier.drain()
        finally:
            await notifier.aclose()

    assert result.dead == 2 and receiver.deliveries == []
    errors = {r.channel_id: r.last_error or "" for r in await rows(sessions)}
    assert "disabled" in errors[disabled]
    assert "TRACKD_ALLOW_PRIVATE_FETCH" in errors[private]


async def test_stored_urls_that_cannot_be_read_are_dead_not_a_crash(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Channels stored before URLs were checked when they were set up.
    import apprise

    called: list[str] = []
    monkeypatch.setattr(apprise.Apprise, "notify", lambda self, **kw: called.append("sent"))
    stored = {
        "webhook": "http://[::1",
        "discord": "http://[zz::]/",
        "apprise": "json://127.0.0.1:+9999/x",
    }
    ids = {}
    for kind, url in stored.items():
        ids[kind] = await webhook(sessions, f"https://hooks.example/{kind}")
        async with sessions() as session:
            await session.execute(
                update(NotificationChannel)
                .where(NotificationChannel.id == ids[kind])
                .values(kind=kind, url=url)
            )
            await session.commit()
        await enqueue(sessions, ids[kind], kind=kind)
    notifier = Notifier(sessions, None, settings(allow_private_fetch=False))
    try:
        result = await notifier.drain()
    finally:
        await notifier.aclose()

    assert result.dead == 3 and called == []
    errors = {r.channel_id: r.last_error or "" for r in await rows(sessions)}
    assert "cannot be read" in errors[ids["webhook"]]
    assert "cannot be read" in errors[ids["discord"]]
    assert "loopback" in errors[ids["apprise"]]


async def test_a_crash_between_send_and_record_is_sent_again_and_received_once(
    database_url: str,
) -> None:
    receiver = Receiver()
    received = asyncio.Event()
    original = receiver.handle

    async def handle_then_signal(request: Any) -> Any:
        response = await original(request)
        received.set()
        await asyncio.sleep(0.2)  # the crash happens while the answer is on its way
        return response

    receiver.handle = handle_then_signal  # type: ignore[method-assign]
    async with receiving(receiver) as base_url:
        engine = create_engine(database_url)
        sessions = session_factory(engine)
        channel_id = await webhook(sessions, f"{base_url}/hook")
        [key] = await enqueue(sessions, channel_id)

        first = Notifier(sessions, None, settings(notify_lease_s=5), worker="first")
        round_ = asyncio.create_task(first.run_once())
        await asyncio.wait_for(received.wait(), 10)
        round_.cancel()  # the process dies: nothing after the send runs
        with pytest.raises(asyncio.CancelledError):
            await round_
        await first.aclose()
        await engine.dispose()

        # A new process: the row is claimed by the dead one until its lease passes.
        engine = create_engine(database_url)
        sessions = session_factory(engine)
        second = Notifier(sessions, None, settings(), worker="second")
        try:
            assert (await second.drain()).claimed == 0
            [row] = await rows(sessions)
            assert row.status == "pending" and row.claimed_by == "first"
            async with sessions() as session:
                await session.execute(
                    update(OutboxRow).values(next_attempt_at=datetime.now(UTC))
                )  # the lease has passed
                await session.commit()
            assert (await second.drain()).sent == 1
            assert (await second.drain()).claimed == 0
            [row] = await rows(sessions)
        finally:
            await second.aclose()
            await engine.dispose()

    assert row.status == "sent" and row.claimed_by == "second" and row.attempts == 2
    # Sent twice over the wire, with one key: the receiver acted once.
    assert [d.headers["idempotency-key"] for d in receiver.deliveries] == [key, key]
    assert list(receiver.accepted) == [key]


@pytest.mark.postgres
async def test_skip_locked_claims_leave_locked_rows_to_others(
    postgres_databases: Callable[[], AbstractAsyncContextManager[str]],
) -> None:
    async with postgres_databases() as url:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            channel_id = await webhook(sessions, "https://hooks.example/x")
            await enqueue(sessions, channel_id, 10)
            lease = timedelta(seconds=30)
            async with sessions() as holder, sessions() as other:
                mine = await outbox_repo.claim(holder, worker="a", limit=4, lease=lease)
                # `holder` has not committed: its rows are locked. A claim must skip them
                # at once instead of waiting for the lock.
                theirs = await asyncio.wait_for(
                    outbox_repo.claim(other, worker="b", limit=10, lease=lease), 5
                )
                await other.commit()
                await holder.commit()
        finally:
            await engine.dispose()
    assert len(mine) == 4 and len(theirs) == 6
    assert not {c.id for c in mine} & {c.id for c in theirs}


@pytest.mark.postgres
async def test_two_notifiers_deliver_every_message_once(
    postgres_databases: Callable[[], AbstractAsyncContextManager[str]],
) -> None:
    receiver = Receiver()
    async with postgres_databases() as url, receiving(receiver) as base_url:
        engines = [create_engine(url) for _ in range(2)]
        try:
            channel_id = await webhook(session_factory(engines[0]), f"{base_url}/hook")
            keys = await enqueue(session_factory(engines[0]), channel_id, 40)
            notifiers = [
                Notifier(session_factory(e), None, settings(notify_batch_size=4), worker=f"n{i}")
                for i, e in enumerate(engines)
            ]
            results = await asyncio.gather(*(n.drain() for n in notifiers))
            for notifier in notifiers:
                await notifier.aclose()
            final = await rows(session_factory(engines[0]))
        finally:
            for engine in engines:
                await engine.dispose()

    assert sum(r.sent for r in results) == 40
    assert sorted(d.headers["idempotency-key"] for d in receiver.deliveries) == sorted(keys)
    assert {r.status for r in final} == {"sent"}
    assert {r.claimed_by for r in final} == {"n0", "n1"}


async def test_apprise_urls_deliver_through_apprise(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    pytest.importorskip("apprise")
    receiver = Receiver()
    async with receiving(receiver) as base_url:
        async with sessions() as session:
            row = await channels.create_channel(
                session, "t1", kind="apprise", url=base_url.replace("http://", "json://") + "/ap"
            )
            await session.commit()
        await enqueue(sessions, row.id, kind="apprise", max_attempts=1)
        notifier = Notifier(sessions, None, settings(), backoff=NO_WAIT)
        try:
            result = await notifier.drain()
        finally:
            await notifier.aclose()

    assert result.sent == 1
    [delivery] = receiver.deliveries
    assert delivery.path == "/ap"
    body = delivery.json()
    assert body["title"] == "something changed"
    assert body["message"].startswith("trackd")


async def test_the_runtime_runs_the_notifier_unless_disabled(database_url: str) -> None:
    assert Runtime.build(Settings(database_url=database_url), notify=False).notifier is None
    off = Runtime.build(Settings(database_url=database_url, notifier_enabled=False), notify=True)
    assert off.notifier is None
    await off.stop()

    receiver = Receiver()
    async with receiving(receiver) as base_url:
        runtime = Runtime.build(settings(database_url=database_url), ingest=False, notify=True)
        await runtime.start(migrate=False)
        try:
            channel_id = await webhook(runtime.sessions, f"{base_url}/hook")
            [key] = await enqueue(runtime.sessions, channel_id)
            await asyncio.wait_for(receiver.arrived.wait(), 10)
        finally:
            await runtime.stop()
    assert [d.headers["idempotency-key"] for d in receiver.deliveries] == [key]


async def test_the_runtimes_notifier_expires_old_snapshots_in_its_housekeeping(
    database_url: str,
) -> None:
    # With ingest: the changes' bus events, which the notifier publishes meanwhile, need a
    # consumer on the in-process bus, or their publish waits for one until the runtime stops.
    runtime = Runtime.build(
        settings(database_url=database_url, snapshot_keep_days=30), ingest=True, notify=True
    )
    await runtime.start(migrate=False)
    try:
        assert runtime.notifier is not None
        old = datetime.now(UTC) - timedelta(days=400)
        # Recorded by a deployment that kept them longer; this one keeps 30 days.
        keeping = Settings(snapshot_keep_days=1000)
        async with runtime.sessions() as session:
            for i in range(4):
                snapshot = Snapshot("p1", "game", {"rank": i}, old + timedelta(minutes=i))
                await record_snapshot(session, "t1", snapshot, settings=keeping)
            await session.commit()
        # The newest snapshot stays: the next one is diffed against it.
        assert await runtime.notifier.housekeep() == {"snapshots": 3, "outbox": 0}
        assert await runtime.notifier.housekeep() == {"snapshots": 0, "outbox": 0}
    finally:
        await runtime.stop()


async def test_a_change_lands_in_the_event_timeline_through_bus_and_ingest(
    database_url: str,
) -> None:
    runtime = Runtime.build(settings(database_url=database_url), ingest=True, notify=True)
    await runtime.start(migrate=False)
    try:
        async with runtime.sessions() as session:
            taken = datetime(2026, 3, 1, tzinfo=UTC)
            await record_snapshot(
                session, "t1", Snapshot("p1", "game", {"rank": 1}, taken), settings=Settings()
            )
            change = await record_snapshot(
                session,
                "t1",
                Snapshot("p1", "game", {"rank": 2}, taken + timedelta(hours=1)),
                settings=Settings(),
            )
            await session.commit()
        assert change is not None
        event_id = f"snapshot.changed:{change.id}"
        async with asyncio.timeout(10):
            while True:
                async with runtime.sessions() as session:
                    found = await session.scalar(
                        select(TimelineEvent).where(TimelineEvent.event_id == event_id)
                    )
                if found is not None:
                    break
                await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert found.tenant_id == "t1"
    assert found.event_type == "snapshot.changed" and found.topic == "system-events"
    assert found.occurred_at == taken + timedelta(hours=1)
    assert found.data is not None and found.data["changes"][0]["path"] == "rank"
