"""The poller on SQLite and PostgreSQL: runs, retries with backoff, blocks, leases, events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from poll_fakes import T0, Clock, ScriptedSource, offline_client, registered
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.base import Subscription
from trackd.bus.memory import MemoryBus
from trackd.domain.polls import PollStatus
from trackd.domain.retry import Backoff
from trackd.domain.states import TaskState
from trackd.ingest.consumer import IngestConsumer, IngestOptions
from trackd.scheduling import Poller, PollerOptions, announce_polls, request_poll
from trackd.scheduling.events import TOPIC
from trackd.settings import Settings
from trackd.store.models import PollRow, SnapshotRow
from trackd.store.repos import polls as poll_repo
from trackd.store.repos import tasks

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"
# What snapshots are kept and notified by; the defaults, as a deployment would run.
SETTINGS = Settings()
EXACT = Backoff(base=5, factor=2, cap=3600, jitter=0)
HOST_EXACT = Backoff(base=60, factor=2, cap=3600, jitter=0)


@pytest.fixture
def source() -> Iterator[ScriptedSource]:
    with registered(ScriptedSource()) as s:
        yield s


def poller(
    sessions: Sessions, clock: Clock, *, bus: MemoryBus | None = None, **options: Any
) -> Poller:
    options.setdefault("retry_backoff", EXACT)
    options.setdefault("host_backoff", HOST_EXACT)
    return Poller(
        bus,
        sessions,
        PollerOptions(consumer=options.pop("consumer", "worker-1"), **options),
        client_factory=offline_client,
        clock=clock,
        settings=SETTINGS,
    )


async def request(sessions: Sessions, target: dict[str, Any], **kwargs: Any) -> uuid.UUID:
    kwargs.setdefault("now", T0)
    async with sessions() as session, session.begin():
        poll = await request_poll(session, TENANT, "scripted", target, **kwargs)
    return poll.id


async def load(sessions: Sessions, poll_id: uuid.UUID) -> PollRow:
    async with sessions() as session:
        row = await poll_repo.get(session, TENANT, poll_id)
    assert row is not None
    return row


async def test_a_poll_runs_and_keeps_the_snapshots_it_stored(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    first = await request(sessions, {"subject": "a"})
    second = await request(sessions, {"subject": "a"})

    assert await poller(sessions, clock).run_due() == 2

    rows = [await load(sessions, first), await load(sessions, second)]
    assert [r.status for r in rows] == [PollStatus.COMPLETED, PollStatus.COMPLETED]
    assert all(r.attempt == 1 and r.finished_at == T0 and r.not_before is None for r in rows)
    async with sessions() as session:
        stored = {s.id: s for s in await session.scalars(select(SnapshotRow))}
    results = [r.result for r in rows]
    assert all(res is not None for res in results)
    ids = [uuid.UUID(res["snapshots"][0]["id"]) for res in results if res]
    assert set(ids) == set(stored)
    # The two fetches saw different ratings: whichever ran second recorded a change.
    assert sorted(res["changes"] for res in results if res) == [0, 1]
    changed = [res["snapshots"][0]["changed"] for res in results if res]
    assert ["data.rating"] in changed or ["rating"] in changed


async def test_failures_retry_with_exponential_backoff_until_attempts_run_out(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    poll_id = await request(sessions, {"subject": "a", "fail": 5}, max_attempts=3)
    worker = poller(sessions, clock)

    assert await worker.run_due() == 1
    after_one = await load(sessions, poll_id)
    clock.advance(4.9)
    assert await worker.run_due() == 0  # still backing off
    clock.advance(0.1)
    assert await worker.run_due() == 1
    after_two = await load(sessions, poll_id)
    clock.advance(10)
    assert await worker.run_due() == 1
    after_three = await load(sessions, poll_id)
    clock.advance(3600)

    assert await worker.run_due() == 0
    assert (after_one.status, after_one.attempt) == (PollStatus.PENDING, 1)
    assert after_one.not_before == T0 + timedelta(seconds=5)
    assert "retrying in 5.0 s" in (after_one.error or "")
    assert (after_two.status, after_two.attempt) == (PollStatus.PENDING, 2)
    assert after_two.not_before == T0 + timedelta(seconds=15)
    assert (after_three.status, after_three.attempt) == (PollStatus.FAILED, 3)
    assert after_three.not_before is None
    assert "attempt 3 of 3 failed" in (after_three.error or "")
    assert source.calls["a"] == 3
    assert (worker.stats.retried, worker.stats.failed) == (2, 1)


async def test_a_retry_that_succeeds_completes_the_poll(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    poll_id = await request(sessions, {"subject": "a", "fail": 1})
    worker = poller(sessions, clock)

    await worker.run_due()
    clock.advance(5)
    await worker.run_due()

    row = await load(sessions, poll_id)
    assert (row.status, row.attempt, row.error) == (PollStatus.COMPLETED, 2, None)


async def test_a_target_that_can_never_work_fails_without_retrying(
    sessions: Sessions, source: ScriptedSource
) -> None:
    poll_id = await request(sessions, {"subject": "a", "invalid": True})

    await poller(sessions, Clock()).run_due()

    row = await load(sessions, poll_id)
    assert (row.status, row.attempt) == (PollStatus.FAILED, 1)
    assert "does not exist" in (row.error or "")


async def test_a_block_waits_for_the_host_and_uses_no_attempt(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    blocked = await request(sessions, {"subject": "a", "block": 1}, max_attempts=1)
    worker = poller(sessions, clock)

    await worker.run_due()
    first = await load(sessions, blocked)
    clock.advance(59)
    assert await worker.run_due() == 0
    clock.advance(1)
    await worker.run_due()
    second = await load(sessions, blocked)

    assert (first.status, first.attempt, first.blocks) == (PollStatus.BLOCKED, 1, 1)
    assert first.blocked_host == "stats.example"
    assert first.not_before == T0 + timedelta(seconds=60)
    assert "blocked by stats.example" in (first.error or "")
    # max_attempts=1, yet it ran again: a block is not a failure.
    assert (second.status, second.attempt, second.blocks) == (PollStatus.COMPLETED, 1, 0)
    assert worker.stats.blocked == 1
    assert worker.stats.failed == 0


async def test_a_host_that_blocks_is_left_alone_longer_each_time_and_honours_retry_after(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    poll_id = await request(sessions, {"subject": "a", "block": 3, "retry_after": 90})
    worker = poller(sessions, clock, max_blocks=3)

    await worker.run_due()
    waits = [(await load(sessions, poll_id)).not_before]
    clock.now = waits[-1]  # type: ignore[assignment]
    await worker.run_due()
    waits.append((await load(sessions, poll_id)).not_before)
    clock.now = waits[-1]  # type: ignore[assignment]
    await worker.run_due()
    final = await load(sessions, poll_id)

    # Retry-After 90 beats the first minute; then 120 s (two strikes) beats it.
    assert waits == [T0 + timedelta(seconds=90), T0 + timedelta(seconds=210)]
    assert (final.status, final.blocks) == (PollStatus.FAILED, 2)
    assert "3 times in a row" in (final.error or "")


async def test_a_host_backing_off_is_not_asked_by_other_polls(
    sessions: Sessions, source: ScriptedSource
) -> None:
    """Sources that fetch through the client: the guard refuses the request itself."""
    clock = Clock()
    asked: list[str] = []

    class HttpSource(ScriptedSource):
        async def fetch(self, target: Any, client: Any) -> Any:
            from trackd.sources.base import SourceBlocked

            response = await client.get(f"https://{target['host']}/{target['subject']}")
            asked.append(target["subject"])
            if response.status_code == 403:
                raise SourceBlocked("403", host=target["host"])
            return []

    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403 if request.url.path == "/first" else 200)

    with registered(HttpSource("http_fake")):
        async with sessions() as session, session.begin():
            first = await request_poll(
                session, TENANT, "http_fake", {"subject": "first", "host": "h.example"}, now=T0
            )
        worker = Poller(
            None,
            sessions,
            PollerOptions(consumer="w", host_backoff=HOST_EXACT),
            client_factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(answer)),
            clock=clock,
            settings=SETTINGS,
        )
        await worker.run_due()
        async with sessions() as session, session.begin():
            second = await request_poll(
                session, TENANT, "http_fake", {"subject": "second", "host": "h.example"}, now=T0
            )
            elsewhere = await request_poll(
                session, TENANT, "http_fake", {"subject": "third", "host": "i.example"}, now=T0
            )
        clock.advance(1)
        await worker.run_due()

    later = await load(sessions, second.id)
    assert asked == ["first", "third"]  # "first" was refused, "second" never sent
    assert (await load(sessions, first.id)).status == PollStatus.BLOCKED
    assert later.status == PollStatus.BLOCKED
    assert later.not_before == T0 + timedelta(seconds=60)
    assert (await load(sessions, elsewhere.id)).status == PollStatus.COMPLETED


async def test_a_poll_left_running_by_a_dead_worker_runs_again_after_its_lease(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    poll_id = await request(sessions, {"subject": "a"})
    # A worker claims it and dies: no heartbeat, no result.
    async with sessions() as session, session.begin():
        (claim,) = await poll_repo.claim(
            session, owner="dead-worker", now=T0, lease_seconds=30, limit=1
        )
    worker = poller(sessions, clock, consumer="worker-2")

    clock.advance(29)
    assert await worker.run_due() == 0  # the lease still holds
    clock.advance(1)
    assert await worker.run_due() == 1

    row = await load(sessions, poll_id)
    assert claim.poll.lease_owner == "dead-worker"
    assert (row.status, row.attempt) == (PollStatus.COMPLETED, 2)
    assert source.calls["a"] == 1


async def test_a_lost_lease_on_the_last_attempt_fails_the_poll(
    sessions: Sessions, source: ScriptedSource
) -> None:
    poll_id = await request(sessions, {"subject": "a"}, max_attempts=1)
    async with sessions() as session, session.begin():
        await poll_repo.claim(session, owner="dead-worker", now=T0, lease_seconds=30, limit=1)

    await poller(sessions, Clock(T0 + timedelta(seconds=31))).run_due()

    row = await load(sessions, poll_id)
    assert row.status == PollStatus.FAILED
    assert "dead-worker stopped renewing its lease" in (row.error or "")
    assert source.calls["a"] == 0


async def test_a_worker_that_lost_its_lease_writes_nothing(
    sessions: Sessions, source: ScriptedSource
) -> None:
    poll_id = await request(sessions, {"subject": "a"})
    async with sessions() as session, session.begin():
        (claim,) = await poll_repo.claim(session, owner="slow", now=T0, lease_seconds=30, limit=1)
    later = T0 + timedelta(seconds=31)
    async with sessions() as session, session.begin():
        (taken,) = await poll_repo.claim(
            session, owner="fast", now=later, lease_seconds=30, limit=1
        )

    async with sessions() as session, session.begin():
        seq = await poll_repo.finish(
            session, claim.poll, owner="slow", now=later, status=PollStatus.COMPLETED
        )
        renewed = await poll_repo.renew(
            session, claim.poll, owner="slow", now=later, lease_seconds=30
        )

    assert (seq, renewed) == (None, None)
    row = await load(sessions, poll_id)
    assert (row.status, row.lease_owner, row.attempt) == (PollStatus.RUNNING, "fast", 2)
    assert taken.was is PollStatus.RUNNING


async def test_heartbeats_keep_a_long_poll_from_being_taken_over(
    sessions: Sessions, source: ScriptedSource
) -> None:
    """Real time: a 1.2 s fetch under a 0.9 s lease, renewed every 0.3 s."""
    poll_id = await request(sessions, {"subject": "a", "sleep": 1.2}, now=None)
    first = Poller(
        None,
        sessions,
        PollerOptions(consumer="w1", lease_seconds=0.9),
        client_factory=offline_client,
        settings=SETTINGS,
    )
    second = Poller(
        None,
        sessions,
        PollerOptions(consumer="w2", lease_seconds=0.9),
        client_factory=offline_client,
        settings=SETTINGS,
    )

    running = asyncio.create_task(first.run_due())
    await source.started.wait()
    taken_over = 0
    for _ in range(5):
        await asyncio.sleep(0.2)
        taken_over += await second.run_due()
    await running

    row = await load(sessions, poll_id)
    assert taken_over == 0
    assert (row.status, row.attempt, row.lease_owner) == (PollStatus.COMPLETED, 1, None)
    assert row.heartbeat_at is not None and row.heartbeat_at > row.started_at  # type: ignore[operator]


async def test_polls_show_up_as_tracked_tasks(sessions: Sessions, source: ScriptedSource) -> None:
    bus = MemoryBus()
    ingest = IngestConsumer(bus, sessions, IngestOptions(max_wait=0.001, idle_wait=0.05))
    ingesting = asyncio.create_task(ingest.run())
    clock = Clock()
    ok = await request(sessions, {"subject": "a", "fail": 1})
    bad = await request(sessions, {"subject": "b", "fail": 9}, max_attempts=2)
    worker = poller(sessions, clock, bus=bus)

    await worker.run_due()
    clock.advance(5)
    await worker.run_due()
    await bus.drain()
    ingest.stop()
    await ingesting

    async with sessions() as session:
        done = await tasks.get(session, TENANT, str(ok))
        failed = await tasks.get(session, TENANT, str(bad))
        history = await tasks.transitions_of(session, TENANT, str(ok))
    assert done is not None and failed is not None
    assert (done.event_type, done.state, done.attempt) == ("poll.scripted", TaskState.COMPLETED, 2)
    assert done.agent_id == "poll.scripted"
    assert done.started_at is not None and done.completed_at is not None
    assert (failed.state, failed.attempt, failed.max_attempts) == (TaskState.FAILED, 2, 2)
    assert "attempt 2 of 2 failed" in (failed.error or "")
    assert [(t.to_state, t.attempt) for t in history] == [
        ("pending", 1),
        ("running", 1),
        ("pending", 2),
        ("running", 2),
        ("completed", 2),
    ]


async def test_a_worker_started_by_a_request_on_the_bus(
    sessions: Sessions, source: ScriptedSource
) -> None:
    bus = MemoryBus()
    # Ingest must consume the poll's task events, or publishing them would wait.
    ingest = IngestConsumer(bus, sessions, IngestOptions(max_wait=0.001, idle_wait=0.05))
    ingesting = asyncio.create_task(ingest.run())
    watch = await bus.subscribe([TOPIC], "test-watch", "test")
    # Due in an hour by the worker's clock: its first sweep finds nothing to take; then the
    # clock moves on, and a sweep every minute leaves only the request to start the poll.
    clock = WatchedClock(T0)
    poll_id = await request(sessions, {"subject": "a"}, now=T0 + timedelta(hours=1))
    worker = Poller(
        bus,
        sessions,
        PollerOptions(consumer="w1", sweep_interval=60),
        client_factory=offline_client,
        clock=clock,
        settings=SETTINGS,
    )
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(10):
        await clock.read.wait()  # the first sweep looked for due polls at T0
    clock.now = T0 + timedelta(hours=1)
    async with sessions() as session:
        poll = await poll_repo.get(session, TENANT, poll_id)
    assert poll is not None

    await announce_polls(bus, [poll])
    async with asyncio.timeout(10):
        await _until_state(watch, poll_id, TaskState.COMPLETED)
    worker.stop()
    await running
    ingest.stop()
    await ingesting
    await watch.close()

    assert (await load(sessions, poll_id)).status == PollStatus.COMPLETED
    assert worker.stats.completed == 1
    assert source.calls == {"a": 1}


class WatchedClock(Clock):
    """A clock that tells when it was first read."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.read = asyncio.Event()

    def __call__(self) -> datetime:
        self.read.set()
        return super().__call__()


async def _until_state(watch: Subscription, poll_id: uuid.UUID, state: TaskState) -> None:
    """Wait for the poll's task event that takes it to `state` (bound it with a timeout)."""
    while True:
        messages = await watch.fetch(100, 1.0)
        await watch.ack(messages)
        for message in messages:
            data = json.loads(message.body)["data"]
            if data["task_id"] == str(poll_id) and data.get("new_state") == state.value:
                return


async def test_a_full_worker_takes_the_next_poll_when_a_slot_frees_not_at_the_next_sweep(
    sessions: Sessions, source: ScriptedSource
) -> None:
    for n in range(10):
        await request(sessions, {"subject": f"s{n}", "sleep": 0.02}, now=None)
    worker = Poller(
        None,
        sessions,
        PollerOptions(consumer="w", concurrency=2, sweep_interval=5),
        client_factory=offline_client,
        settings=SETTINGS,
    )

    running = asyncio.create_task(worker.run())
    try:
        # Two at a time, one sweep every 5 s: waiting for sweeps would take 25 s.
        async with asyncio.timeout(4):
            while worker.stats.completed < 10:  # noqa: ASYNC110 - polling a counter
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await running

    assert worker.stats.completed == 10
    assert source.calls == {f"s{n}": 1 for n in range(10)}
