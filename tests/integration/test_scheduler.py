"""Schedules and the scheduler on SQLite and PostgreSQL, with a clock the tests move."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import pytest
from poll_fakes import T0, Clock, ScriptedSource, registered
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.memory import MemoryBus
from trackd.domain.polls import PollStatus
from trackd.domain.schedules import InvalidSchedule, RunStatus, ScheduleStatus
from trackd.errors import Conflict
from trackd.scheduling import (
    POLL_REQUESTS,
    POLLERS_GROUP,
    Scheduler,
    SchedulerOptions,
    cancel_schedule,
    create_schedule,
    request_poll,
    schedule_run,
)
from trackd.scheduling.requests import decode_request
from trackd.sources.base import InvalidTarget
from trackd.store.engine import create_engine, session_factory
from trackd.store.models import PollRow, ScheduleRow
from trackd.store.repos import polls as poll_repo
from trackd.store.repos import schedules as schedule_repo

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"
NO_SPREAD = SchedulerOptions(startup_spread_seconds=0)


@pytest.fixture
def source() -> Iterator[ScriptedSource]:
    with registered(ScriptedSource()) as s:
        yield s


async def polls_of(sessions: Sessions, schedule: ScheduleRow) -> list[PollRow]:
    async with sessions() as session:
        return await poll_repo.of_schedule(session, TENANT, schedule.id)


async def reload(sessions: Sessions, schedule: ScheduleRow) -> ScheduleRow:
    async with sessions() as session:
        row = await session.get(ScheduleRow, schedule.id)
        assert row is not None
        return row


async def finish_due(sessions: Sessions, clock: Clock) -> None:
    """Complete every due poll, as a worker would."""
    async with sessions() as session, session.begin():
        claims = await poll_repo.claim(
            session, owner="w", now=clock.now, lease_seconds=30, limit=1000
        )
        for claim in claims:
            await poll_repo.finish(
                session, claim.poll, owner="w", now=clock.now, status=PollStatus.COMPLETED
            )


async def make(sessions: Sessions, **kwargs: object) -> ScheduleRow:
    kwargs.setdefault("source", "scripted")
    kwargs.setdefault("target", {"subject": "a"})
    kwargs.setdefault("now", T0)
    async with sessions() as session, session.begin():
        return await create_schedule(session, TENANT, **kwargs)  # type: ignore[arg-type]


async def test_an_interval_schedule_fires_each_run_once(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    schedule = await make(sessions, name="every-minute", interval_seconds=60)
    scheduler = Scheduler(None, sessions, NO_SPREAD, clock=clock)

    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0  # nothing more is due at the same instant
    await finish_due(sessions, clock)
    clock.advance(30)
    assert await scheduler.tick() == 0
    clock.advance(31)
    assert await scheduler.tick() == 1

    polls = await polls_of(sessions, schedule)
    assert sorted(p.scheduled_for for p in polls if p.scheduled_for) == [
        T0,
        T0 + timedelta(seconds=60),
    ]
    assert sorted(p.status for p in polls) == [PollStatus.COMPLETED, PollStatus.PENDING]
    assert {p.source for p in polls} == {"scripted"}
    row = await reload(sessions, schedule)
    assert row.next_nominal_at == T0 + timedelta(seconds=120)
    assert row.last_run_at == T0 + timedelta(seconds=60)
    assert row.missed_runs == 0


async def test_a_daily_cron_at_two_utc(sessions: Sessions, source: ScriptedSource) -> None:
    schedule = await make(sessions, name="daily", cron="0 2 * * *", misfire_grace_seconds=600)
    clock = Clock(T0.replace(day=12, hour=2, minute=0, second=3))
    scheduler = Scheduler(None, sessions, NO_SPREAD, clock=clock)

    assert schedule.next_run_at == T0.replace(day=12, hour=2, minute=0)
    assert await scheduler.tick() == 1

    row = await reload(sessions, schedule)
    assert row.next_run_at == T0.replace(day=13, hour=2, minute=0)
    assert len(await polls_of(sessions, schedule)) == 1


async def test_after_an_outage_one_run_starts_and_the_rest_are_missed(
    sessions: Sessions, source: ScriptedSource
) -> None:
    schedule = await make(sessions, name="often", interval_seconds=60, misfire_grace_seconds=120)
    clock = Clock(T0 + timedelta(minutes=10, seconds=5))  # down for ten minutes
    scheduler = Scheduler(None, sessions, NO_SPREAD, clock=clock)

    await scheduler.tick()

    polls = await polls_of(sessions, schedule)
    assert [p.scheduled_for for p in polls] == [T0 + timedelta(minutes=10)]
    row = await reload(sessions, schedule)
    assert row.missed_runs == 10
    assert row.last_missed_at == clock.now
    assert row.next_nominal_at == T0 + timedelta(minutes=11)


async def test_a_one_shot_late_beyond_its_grace_is_missed(
    sessions: Sessions, source: ScriptedSource
) -> None:
    schedule = await make(
        sessions, name="batch", run_at=T0 + timedelta(minutes=5), misfire_grace_seconds=60
    )
    scheduler = Scheduler(None, sessions, NO_SPREAD, clock=Clock(T0 + timedelta(minutes=7)))

    await scheduler.tick()

    row = await reload(sessions, schedule)
    assert row.status == ScheduleStatus.MISSED
    assert row.next_run_at is None
    assert await polls_of(sessions, schedule) == []
    async with sessions() as session:
        run = await schedule_run(session, TENANT, schedule.id)
    assert run is not None
    assert run.status is RunStatus.MISSED


async def test_a_batch_reports_pending_running_then_failed_or_completed(
    sessions: Sessions, source: ScriptedSource
) -> None:
    when = T0 + timedelta(minutes=5)
    schedule = await make(
        sessions,
        name="guild-42",
        target=None,
        targets=[{"subject": "a"}, {"subject": "b"}, {"subject": "c"}],
        run_at=when,
        labels={"guild_id": "42"},
    )
    clock = Clock(when + timedelta(seconds=1))

    async with sessions() as session:
        before = await schedule_run(session, TENANT, schedule.id)
    await Scheduler(None, sessions, NO_SPREAD, clock=clock).tick()
    async with sessions() as session:
        fired = await schedule_run(session, TENANT, schedule.id)
        polls = await poll_repo.of_schedule(session, TENANT, schedule.id)
    # Two polls end: one completed, one failed; the third is still pending.
    async with sessions() as session, session.begin():
        claims = await poll_repo.claim(session, owner="w", now=clock.now, lease_seconds=30, limit=2)
        for claim, status in zip(claims, [PollStatus.COMPLETED, PollStatus.FAILED], strict=True):
            await poll_repo.finish(session, claim.poll, owner="w", now=clock.now, status=status)
    async with sessions() as session:
        partial = await schedule_run(session, TENANT, schedule.id)
    async with sessions() as session, session.begin():
        (last,) = await poll_repo.claim(
            session, owner="w", now=clock.now, lease_seconds=30, limit=5
        )
        await poll_repo.finish(
            session, last.poll, owner="w", now=clock.now, status=PollStatus.COMPLETED
        )
    async with sessions() as session:
        done = await schedule_run(session, TENANT, schedule.id)
        by_label = await schedule_repo.find(session, TENANT, labels={"guild_id": "42"})
        other = await schedule_repo.find(session, TENANT, labels={"guild_id": "43"})

    assert before is not None and before.status is RunStatus.PENDING
    assert before.scheduled_for == when
    assert fired is not None and fired.status is RunStatus.RUNNING
    assert fired.polls == {PollStatus.PENDING: 3}
    assert sorted(p.item for p in polls) == [0, 1, 2]
    assert sorted(p.target["subject"] for p in polls) == ["a", "b", "c"]
    assert partial is not None and partial.status is RunStatus.RUNNING
    assert done is not None and done.status is RunStatus.FAILED
    assert done.polls == {PollStatus.COMPLETED: 2, PollStatus.FAILED: 1}
    assert done.finished_at == clock.now
    assert [s.id for s in by_label] == [schedule.id]
    assert other == []
    assert (await reload(sessions, schedule)).status == ScheduleStatus.DONE


async def test_cancel_stops_a_schedule_and_its_waiting_polls_and_frees_its_name(
    sessions: Sessions, source: ScriptedSource
) -> None:
    schedule = await make(sessions, name="refresh", interval_seconds=60)
    await Scheduler(None, sessions, NO_SPREAD, clock=Clock()).tick()

    async with sessions() as session, session.begin():
        with pytest.raises(Conflict, match="refresh"):
            await create_schedule(
                session,
                TENANT,
                name="refresh",
                source="scripted",
                target={"subject": "b"},
                interval_seconds=60,
                now=T0,
            )
        cancelled = await cancel_schedule(session, TENANT, schedule.id, now=T0)
        again = await create_schedule(
            session,
            TENANT,
            name="refresh",
            source="scripted",
            target={"subject": "b"},
            interval_seconds=60,
            now=T0,
        )
    later = Clock(T0 + timedelta(minutes=5))
    assert await Scheduler(None, sessions, NO_SPREAD, clock=later).tick() == 1

    assert cancelled is not None and cancelled.status == ScheduleStatus.CANCELLED
    (poll,) = await polls_of(sessions, schedule)
    assert poll.status == PollStatus.CANCELLED
    row = await reload(sessions, schedule)
    assert row.next_run_at is None
    assert again.id != schedule.id
    async with sessions() as session:
        assert await cancel_schedule(session, "other-tenant", again.id) is None


async def test_a_schedule_cancelled_before_it_fired_reports_cancelled(
    sessions: Sessions, source: ScriptedSource
) -> None:
    schedule = await make(sessions, name="later", run_at=T0 + timedelta(hours=1))
    async with sessions() as session, session.begin():
        await cancel_schedule(session, TENANT, schedule.id, now=T0)
    async with sessions() as session:
        run = await schedule_run(session, TENANT, schedule.id)

    assert run is not None and run.status is RunStatus.CANCELLED


async def test_a_run_is_skipped_while_the_previous_one_is_unfinished(
    sessions: Sessions, source: ScriptedSource
) -> None:
    clock = Clock()
    schedule = await make(sessions, name="slow", interval_seconds=60)
    scheduler = Scheduler(None, sessions, NO_SPREAD, clock=clock)
    await scheduler.tick()
    clock.advance(60)

    await scheduler.tick()

    assert len(await polls_of(sessions, schedule)) == 1
    row = await reload(sessions, schedule)
    assert row.missed_runs == 1
    assert scheduler.stats.overlapping == 1
    assert row.next_nominal_at == T0 + timedelta(seconds=120)


async def test_runs_due_at_start_are_spread_over_the_window(
    sessions: Sessions, source: ScriptedSource
) -> None:
    for n in range(40):
        await make(sessions, name=f"s{n}", interval_seconds=3600, run_at=T0)
    clock = Clock(T0 + timedelta(seconds=10))
    scheduler = Scheduler(None, sessions, SchedulerOptions(startup_spread_seconds=60), clock=clock)
    fired_by_second: list[int] = []

    async def polls() -> int:
        async with sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(PollRow)) or 0)

    for _ in range(61):
        await scheduler.tick()
        fired_by_second.append(await polls())
        clock.advance(1)

    # Not all in the first tick: about one in sixty per second, and all within the window.
    assert fired_by_second[0] < 5
    assert 5 < fired_by_second[30] < 35
    assert fired_by_second[-1] == 40
    async with sessions() as session:
        rows = list(await session.scalars(select(ScheduleRow)))
    assert all(r.missed_runs == 0 for r in rows)


async def test_invalid_schedules_and_targets_are_refused_with_a_reason(
    sessions: Sessions, source: ScriptedSource
) -> None:
    async with sessions() as session:
        with pytest.raises(InvalidSchedule, match="five fields"):
            await make(sessions, name="x", cron="every day")
        with pytest.raises(InvalidSchedule, match="not both"):
            await make(sessions, name="x", cron="0 2 * * *", interval_seconds=60)
        with pytest.raises(InvalidSchedule, match="target"):
            await make(sessions, name="x", targets=[{"subject": "a"}], run_at=T0)
        with pytest.raises(InvalidTarget, match="subject"):
            await make(sessions, name="x", target={"id": 1}, run_at=T0)
        with pytest.raises(InvalidTarget, match="subject"):
            await request_poll(session, TENANT, "scripted", {})
        with pytest.raises(InvalidSchedule, match="max_attempts"):
            await request_poll(session, TENANT, "scripted", {"subject": "a"}, max_attempts=0)


async def test_request_poll_is_due_at_once_and_can_be_announced(
    sessions: Sessions, source: ScriptedSource
) -> None:
    bus = MemoryBus()
    sub = await bus.subscribe([POLL_REQUESTS], POLLERS_GROUP, "w1")
    async with sessions() as session, session.begin():
        poll = await request_poll(
            session, TENANT, "scripted", {"subject": "a"}, requested_by="user-1", now=T0
        )
    from trackd.scheduling import announce_polls

    publish = asyncio.create_task(announce_polls(bus, [poll]))
    (message,) = await sub.fetch(10, 1.0)
    await sub.ack([message])
    await publish

    assert decode_request(message.body) == poll.id
    assert poll.status == PollStatus.PENDING
    assert poll.not_before == T0
    assert poll.schedule_id is None
    assert poll.requested_by == "user-1"


async def test_the_scheduler_announces_the_polls_it_creates(
    sessions: Sessions, source: ScriptedSource
) -> None:
    bus = MemoryBus()
    sub = await bus.subscribe([POLL_REQUESTS], POLLERS_GROUP, "w1")
    schedule = await make(
        sessions, name="b", target=None, targets=[{"subject": "a"}, {"subject": "b"}], run_at=T0
    )
    tick = asyncio.create_task(Scheduler(bus, sessions, NO_SPREAD, clock=Clock()).tick())
    messages = await sub.fetch(10, 2.0)
    await sub.ack(messages)
    await tick

    polls = await polls_of(sessions, schedule)
    assert {decode_request(m.body) for m in messages} == {p.id for p in polls}
    assert len(polls) == 2


@pytest.mark.postgres
async def test_two_schedulers_racing_over_200_due_schedules_fire_each_exactly_once(
    postgres_databases: Callable[[], AbstractAsyncContextManager[str]],
) -> None:
    async with postgres_databases() as url:
        engines = [create_engine(url) for _ in range(2)]
        try:
            await _race([session_factory(e) for e in engines])
        finally:
            for e in engines:
                await e.dispose()


async def _race(factories: list[Sessions]) -> None:
    with registered(ScriptedSource()):
        async with factories[0]() as session, session.begin():
            for n in range(200):
                await create_schedule(
                    session,
                    TENANT,
                    name=f"s{n}",
                    source="scripted",
                    target={"subject": f"p{n}"},
                    run_at=T0,
                    now=T0,
                )
    clock = Clock(T0 + timedelta(seconds=1))
    # Small batches, so that the two interleave many times over the 200 rows.
    options = SchedulerOptions(startup_spread_seconds=0, batch_size=7)
    schedulers = [Scheduler(None, f, options, clock=clock) for f in factories]

    handled = await asyncio.gather(*(s.tick() for s in schedulers))

    async with factories[0]() as session:
        per_schedule = (
            await session.execute(
                select(PollRow.schedule_id, func.count()).group_by(PollRow.schedule_id)
            )
        ).all()
        done = await session.scalar(
            select(func.count()).select_from(ScheduleRow).where(ScheduleRow.status == "done")
        )
    assert sum(handled) == 200
    assert all(h > 0 for h in handled), handled  # both took part
    assert len(per_schedule) == 200
    assert {count for _, count in per_schedule} == {1}
    assert done == 200
