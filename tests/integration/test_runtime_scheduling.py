"""`trackd serve` (role all) wiring: scheduler, pollers and ingest in one process on the
in-process bus, started and stopped by the Runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from poll_fakes import ScriptedSource, registered

from trackd.domain.polls import PollStatus
from trackd.domain.schedules import RunStatus
from trackd.domain.states import TaskState
from trackd.runtime import Runtime
from trackd.scheduling import create_schedule, schedule_run
from trackd.settings import Settings
from trackd.store.repos import polls as poll_repo
from trackd.store.repos import tasks


@pytest.fixture
def source() -> Iterator[ScriptedSource]:
    with registered(ScriptedSource()) as s:
        yield s


async def test_serve_runs_schedules_and_polls_in_process(
    database_url: str, source: ScriptedSource
) -> None:
    settings = Settings(
        database_url=database_url,
        scheduler_tick_s=0.05,
        scheduler_startup_spread_s=0,
        poll_sweep_interval_s=0.05,
    )
    runtime = Runtime.build(settings, ingest=True, schedule=True, poll=True)
    assert runtime.scheduler is not None and runtime.poller is not None
    await runtime.start()
    try:
        async with runtime.sessions() as session, session.begin():
            schedule = await create_schedule(
                session,
                "acme",
                name="batch",
                source="scripted",
                targets=[{"subject": "a"}, {"subject": "b"}],
                run_at=datetime.now(UTC),
            )
        async with asyncio.timeout(20):
            while True:
                async with runtime.sessions() as session:
                    run = await schedule_run(session, "acme", schedule.id)
                    polls = await poll_repo.of_schedule(session, "acme", schedule.id)
                    records = [await tasks.get(session, "acme", str(p.id)) for p in polls]
                done = [r for r in records if r is not None and r.state is TaskState.COMPLETED]
                if run is not None and run.status is RunStatus.COMPLETED and len(done) == 2:
                    break
                await asyncio.sleep(0.05)
    finally:
        await runtime.stop()

    assert {p.status for p in polls} == {PollStatus.COMPLETED}
    assert source.calls == {"a": 1, "b": 1}


def test_settings_turn_the_scheduler_and_the_workers_off() -> None:
    settings = Settings(scheduler_enabled=False, worker_enabled=False)

    runtime = Runtime.build(settings, ingest=False, schedule=True, poll=True)

    assert runtime.scheduler is None and runtime.poller is None
