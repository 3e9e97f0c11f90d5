"""`trackd scheduler` and `trackd worker` as processes, over Redis and a SQLite file, fetching
from a local HTTP server through the real `http_json` source.

Each test has Redis keys under a prefix of its own, removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from procs import clean_env, trackd_executable
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from trackd.domain.polls import PollStatus
from trackd.domain.schedules import RunStatus
from trackd.domain.states import TaskState
from trackd.scheduling import create_schedule, request_poll, schedule_run
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade
from trackd.store.models import PollRow, SnapshotRow
from trackd.store.repos import tasks
from webfakes import serve

TENANT = "acme"
pytestmark = pytest.mark.slow


@pytest_asyncio.fixture
async def sessions(database_file: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The application's sessions on `database_file`, migrated; the engine disposed after."""
    await upgrade(database_file)
    engine = create_engine(database_file)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def trackd_env(database: str, bus: str, **extra: str) -> dict[str, str]:
    return clean_env(
        TRACKD_DATABASE_URL=database,
        TRACKD_BUS_URL=bus,
        TRACKD_ALLOW_PRIVATE_FETCH="true",
        **extra,
    )


class Site:
    """A JSON status endpoint; `/slow` hangs on its first request only."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.slow_started = asyncio.Event()

    def app(self) -> Starlette:
        async def status(request: Request) -> JSONResponse:
            name = request.path_params["name"]
            self.hits[name] = self.hits.get(name, 0) + 1
            if name == "slow" and self.hits[name] == 1:
                self.slow_started.set()
                await asyncio.sleep(60)
            return JSONResponse({"status": {"indicator": "ok", "page": name}})

        return Starlette(routes=[Route("/{name}", status)])


async def trackd(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        trackd_executable(),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def finished(process: asyncio.subprocess.Process, within: float = 60) -> str:
    out, _ = await asyncio.wait_for(process.communicate(), within)
    text = out.decode()
    assert process.returncode == 0, text
    return text


def target(base: str, name: str) -> dict[str, Any]:
    return {"url": f"{base}/{name}", "subject": name, "fields": {"state": "/status/indicator"}}


async def test_scheduler_then_worker_processes_poll_and_polls_become_tasks(
    database_file: str, redis_bus_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    env = trackd_env(database_file, redis_bus_url, TRACKD_SCHEDULER_STARTUP_SPREAD_S="0")
    site = Site()
    async with serve(site.app()) as base:
        now = datetime.now(UTC)
        async with sessions() as session, session.begin():
            batch = await create_schedule(
                session,
                TENANT,
                name="guild-1",
                source="http_json",
                targets=[target(base, "a"), target(base, "b")],
                run_at=now,
            )
            every = await create_schedule(
                session,
                TENANT,
                name="status",
                source="http_json",
                target=target(base, "c"),
                interval_seconds=3600,
            )
            manual = await request_poll(session, TENANT, "http_json", target(base, "d"))

        scheduled = await finished(await trackd("scheduler", "--burst", env=env))
        worked = await finished(await trackd("worker", "--burst", env=env))
        await finished(await trackd("ingest", "--burst", env=env))

        async with sessions() as session:
            polls = list(await session.scalars(select(PollRow)))
            snapshots = list(await session.scalars(select(SnapshotRow)))
            run = await schedule_run(session, TENANT, batch.id)
            records = [await tasks.get(session, TENANT, str(p.id)) for p in polls]

    assert "runs=2" in scheduled and "polls=3" in scheduled, scheduled
    assert "completed=4" in worked, worked
    assert sorted(p.target["subject"] for p in polls) == ["a", "b", "c", "d"]
    assert {p.status for p in polls} == {PollStatus.COMPLETED}
    assert {p.schedule_id for p in polls} == {batch.id, every.id, None}
    assert sorted(s.subject for s in snapshots) == ["a", "b", "c", "d"]
    assert all(s.data == {"state": "ok"} for s in snapshots)
    assert run is not None and run.status is RunStatus.COMPLETED and run.total == 2
    assert site.hits == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert all(r is not None for r in records)
    assert {(r.event_type, r.state) for r in records if r} == {
        ("poll.http_json", TaskState.COMPLETED)
    }
    assert manual.id in {p.id for p in polls}


async def test_a_poll_of_a_worker_killed_mid_fetch_runs_again_on_another(
    database_file: str, redis_bus_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    env = trackd_env(
        database_file, redis_bus_url, TRACKD_POLL_LEASE_S="1", TRACKD_FETCH_TIMEOUT_S="120"
    )
    site = Site()

    async def poll_row() -> PollRow:
        async with sessions() as session:
            row = await session.get(PollRow, poll.id)
            assert row is not None
            return row

    async with serve(site.app()) as base:
        async with sessions() as session, session.begin():
            poll = await request_poll(session, TENANT, "http_json", target(base, "slow"))
        doomed = await trackd("worker", "--consumer-name", "doomed", env=env)
        try:
            await asyncio.wait_for(site.slow_started.wait(), 30)
            held = await poll_row()
            os.kill(doomed.pid, signal.SIGKILL)
        finally:
            if doomed.returncode is None:
                doomed.kill()
            await doomed.wait()
        await asyncio.sleep(1.5)  # past the dead worker's lease
        worked = await finished(
            await trackd("worker", "--burst", "--consumer-name", "heir", env=env)
        )
        done = await poll_row()

    assert (held.status, held.lease_owner, held.attempt) == (PollStatus.RUNNING, "doomed", 1)
    assert (done.status, done.attempt, done.lease_owner) == (PollStatus.COMPLETED, 2, None)
    assert site.hits["slow"] == 2
    assert "completed=1" in worked, worked


async def test_worker_and_scheduler_refuse_the_in_process_bus() -> None:
    for command in ("worker", "scheduler"):
        process = await trackd(command, env=clean_env(TRACKD_BUS_URL="memory://"))
        out, _ = await process.communicate()
        assert process.returncode == 2
        assert "memory:// lives inside one process" in out.decode()
