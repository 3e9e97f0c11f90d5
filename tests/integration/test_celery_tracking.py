"""A real Celery worker on a real Redis, tracked by trackd without changing the app.

The worker runs `celery -A celery_app worker -E` as a subprocess; the broker and the result
backend are databases of the test Redis server of their own (the bus tests use db 0), flushed
before and after. Every task's final record in trackd must agree with Celery's result backend:
state, attempt, task name, error, parent.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from redis import Redis
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.memory import MemoryBus
from trackd.bus.urls import from_url
from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord
from trackd.ingest.consumer import IngestConsumer, IngestOptions
from trackd.jobs.celery.book import TaskBook
from trackd.jobs.celery.forwarder import bus_sender
from trackd.jobs.celery.reconcile import Store, reconcile
from trackd.store.engine import create_engine, session_factory
from trackd.store.models import TaskExecution
from trackd.store.repos import tasks

PROJECT = Path(__file__).parent / "celery_project"
BROKER_DB, BACKEND_DB = 13, 14  # this module's own databases on the test Redis server
EXPECTED = {
    "SUCCESS": TaskState.COMPLETED,
    "FAILURE": TaskState.FAILED,
    "REVOKED": TaskState.CANCELLED,
}

pytestmark = pytest.mark.slow


def _db_url(redis_url: str, db: int) -> str:
    return make_url(redis_url).set(database=str(db)).render_as_string(hide_password=False)


def _flush(redis_url: str) -> None:
    for db in (BROKER_DB, BACKEND_DB):
        with Redis.from_url(_db_url(redis_url, db)) as client:
            client.flushdb()


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(PROJECT), env.get("PYTHONPATH", "")]),
        TRACKD_TEST_CELERY_BROKER=_db_url(redis_url, BROKER_DB),
        TRACKD_TEST_CELERY_BACKEND=_db_url(redis_url, BACKEND_DB),
        **extra,
    )
    return env


class Proc:
    """A subprocess whose output goes to a file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None:
                pytest.fail(f"{self.log.name} exited early:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.log.name} never said {text!r}:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()
        return self.popen.returncode


@pytest.fixture
def celery_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    _flush(redis_url)
    env = _env(redis_url)
    for key in ("TRACKD_TEST_CELERY_BROKER", "TRACKD_TEST_CELERY_BACKEND"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("TRACKD_TEST_CELERY_INSTRUMENT", raising=False)
    yield env
    _flush(redis_url)


def load_app(**env: str) -> ModuleType:
    """The test app, imported afresh in this process (its settings come from the env)."""
    for key, value in env.items():
        os.environ[key] = value
    sys.path.insert(0, str(PROJECT))
    try:
        sys.modules.pop("celery_app", None)
        return importlib.import_module("celery_app")
    finally:
        sys.path.remove(str(PROJECT))


def start_worker(
    env: dict[str, str], log: Path, *, events: bool = True, pool: str = "threads"
) -> Proc:
    worker = Proc(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            f"--pool={pool}",
            *(["--concurrency=8"] if pool == "threads" else []),
            *(["-E"] if events else []),
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
            "--hostname=w1@trackd-test",
        ],
        env,
        log,
    )
    worker.wait_for("ready.")
    return worker


def trackd_celery(env: dict[str, str], database: str, log: Path, *options: str) -> Proc:
    trackd = Proc(
        [
            str(Path(sys.executable).parent / "trackd"),
            "celery",
            *options,
            "--broker",
            env["TRACKD_TEST_CELERY_BROKER"],
            "--result-backend",
            env["TRACKD_TEST_CELERY_BACKEND"],
            "--database-url",
            database,
            "--heartbeat-every",
            "1",
        ],
        env,
        log,
    )
    trackd.wait_for("listening for Celery events")
    return trackd


def wait_ready(results: list[Any], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    for result in results:
        while not result.ready():
            assert time.monotonic() < deadline, f"task {result.id} never ended"
            time.sleep(0.05)


async def records(database: str) -> dict[str, TaskRecord]:
    engine = create_engine(database)
    try:
        async with session_factory(engine)() as session:
            ids = list(await session.scalars(select(TaskExecution.task_id)))
            found = await tasks.load_many(session, [("default", i) for i in ids])
        return {task_id: rec for (_, task_id), rec in found.items()}
    finally:
        await engine.dispose()


async def wait_recorded(
    database: str, ids: set[str], within: float = 30.0
) -> dict[str, TaskRecord]:
    """The records once every one of `ids` is ended in trackd's store."""
    deadline = time.monotonic() + within
    while True:
        found = await records(database)
        waiting = {i for i in ids if i not in found or not found[i].terminal}
        if not waiting:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{len(waiting)} tasks not ended in trackd, e.g. {sorted(waiting)[:3]}")
        await asyncio.sleep(0.2)


def assert_agrees_with_backend(app: ModuleType, recs: dict[str, TaskRecord], ids: set[str]) -> None:
    backend = app.app.backend
    mismatches = []
    for task_id in sorted(ids):
        meta = backend.get_task_meta(task_id)
        rec = recs[task_id]
        want = (EXPECTED[meta["status"]], meta["retries"] + 1, meta["name"])
        got = (rec.state, rec.attempt, rec.event_type)
        if want != got or rec.agent_id != meta["name"]:
            mismatches.append((task_id, want, got, rec.agent_id))
        if meta["status"] == "FAILURE":
            assert rec.error and type(meta["result"]).__name__ in rec.error, task_id
        if meta.get("parent_id") not in (None, task_id):  # a retry is sent by the task itself
            assert rec.parent_event_id == meta["parent_id"], task_id
    assert not mismatches, mismatches[:5]


def send_mix(app: ModuleType, count: int) -> list[Any]:
    """`count` tasks: successes, failures, retried successes, retries running out."""
    out = []
    for i in range(count):
        kind = i % 10
        if kind < 6:
            out.append(app.add.delay(i, i))
        elif kind < 8:
            out.append(app.boom.delay(i))
        elif kind == 8:
            out.append(app.flaky.delay(i, 1 + i % 2))  # succeeds on attempt 2 or 3
        else:
            out.append(app.flaky.delay(i, 9))  # fails on attempt 4 (max_retries=3)
    return out


def revoked(app: ModuleType, count: int) -> list[Any]:
    """Tasks revoked before they are sent: the worker refuses them on arrival."""
    from celery import uuid

    ids = [uuid() for _ in range(count)]
    replies = app.app.control.revoke(ids, reply=True, timeout=5)
    assert replies, "the worker did not confirm the revocation"
    return [app.add.apply_async((0, 0), task_id=task_id) for task_id in ids]


def workflow_ids(result: Any) -> list[str]:
    """Every task id of a chain or chord result, walking parents and chord headers."""
    ids: list[str] = []
    node = result
    while node is not None:
        ids.append(node.id)
        node = node.parent
        if node is not None and hasattr(node, "results"):  # a chord's header group
            ids.extend(r.id for r in node.results)
            node = node.parent
    return ids


@pytest_asyncio.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    yield f"sqlite+aiosqlite:///{tmp_path / 'trackd.db'}"


async def test_trackd_celery_agrees_with_the_result_backend_across_its_own_restart(
    celery_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    from celery import chain, chord, group

    started = time.monotonic()
    app = load_app()
    worker = start_worker(celery_env, tmp_path / "worker.log")
    trackd = trackd_celery(celery_env, database, tmp_path / "trackd-1.log")
    try:
        # While trackd celery listens: 100 mixed, 15 revoked, a chain of 3, a chord of 10 + 1.
        results = send_mix(app, 100) + revoked(app, 15)
        flow = chain(app.add.s(1, 2), app.add.s(3), app.add.s(4)).apply_async()
        harmony = chord(group(app.add.s(i, i) for i in range(10)), app.total.s()).apply_async()
        wait_ready([*results, flow, harmony])
        first = {r.id for r in results} | set(workflow_ids(flow)) | set(workflow_ids(harmony))
        assert len(first) == 129
        await wait_recorded(database, first)
        # Six tasks still running when trackd celery stops; they end while it is away.
        gate = f"gate-{uuid.uuid4().hex}"
        sleepers = [app.gated.delay(gate) for _ in range(6)]
        await wait_running(database, {r.id for r in sleepers})
        assert trackd.stop() == 0
        with Redis.from_url(celery_env["TRACKD_TEST_CELERY_BACKEND"]) as client:
            client.set(gate, 1)
        missed = send_mix(app, 65)
        wait_ready([*sleepers, *missed])

        trackd = trackd_celery(celery_env, database, tmp_path / "trackd-2.log")
        every = first | {r.id for r in sleepers} | {r.id for r in missed}
        assert len(every) == 200
        recs = await wait_recorded(database, every)
        assert_agrees_with_backend(app, recs, every)
        assert recs[flow.id].trace_id == flow.parent.parent.id  # the chain's root
        assert {recs[i].state for i in every} == {
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.CANCELLED,
        }
        assert max(recs[i].attempt for i in every) == 4
    finally:
        trackd.stop()
        worker.stop()
    elapsed = time.monotonic() - started
    print(f"\n200 Celery tasks tracked across a trackd celery restart in {elapsed:.1f}s")
    assert "reconciled from the result backend" in trackd.output()


async def test_tasks_celery_retries_end_completed_at_their_last_attempt(
    celery_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    """autoretry_for with max_retries=2: each task fails once, then succeeds on attempt 2."""
    app = load_app()
    worker = start_worker(celery_env, tmp_path / "worker.log")
    # -A: trackd celery reads each task's max_retries from the app's own task registry.
    trackd = trackd_celery(celery_env, database, tmp_path / "trackd.log", "-A", "celery_app")
    try:
        results = [app.retried_once.delay(i) for i in range(30)]
        wait_ready(results)
        assert [r.get() for r in results] == list(range(30))
        ids = {r.id for r in results}
        recs = await wait_recorded(database, ids)
        got = {(recs[i].state, recs[i].attempt, recs[i].max_attempts) for i in ids}
        assert got == {(TaskState.COMPLETED, 2, 3)}
        assert_agrees_with_backend(app, recs, ids)
    finally:
        trackd.stop()
        worker.stop()


async def test_reconcile_ends_a_task_the_store_has_unfinished_in_a_later_attempt(
    celery_env: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The retry's own events were missed; a restarted receiver remembers nothing; the result
    backend (without result_extended, so without `retries`) says SUCCESS."""
    from celery import Celery

    task_id = str(uuid.uuid4())
    worker = {"uuid": task_id, "hostname": "w1@trackd-test"}
    seen = [
        {"type": "task-received", "name": "celery_app.add", "retries": 0, **worker},
        {"type": "task-started", **worker},
        {"type": "task-retried", "exception": "FlakyError('x')", **worker},
        {"type": "task-received", "name": "celery_app.add", "retries": 1, **worker},
    ]
    for at, event in enumerate(seen):
        event["timestamp"] = time.time() - 60 + at
    bus = MemoryBus()
    publish = bus_sender(bus)
    consumer = IngestConsumer(bus, sessions, IngestOptions(idle_wait=0.05))
    running = asyncio.create_task(consumer.run())
    try:
        live = TaskBook()
        await publish([env for event in seen for env in live.translate(event)])
        await bus.drain()
        async with sessions() as session:
            before = await tasks.get(session, "default", task_id)
        assert before is not None and (before.state, before.attempt) == (TaskState.PENDING, 2)

        app = Celery("trackd-reconcile", backend=celery_env["TRACKD_TEST_CELERY_BACKEND"])
        backend = app.backend
        # What the worker stored (written as Celery's Redis backend writes it: its own
        # store_result calls a redis-py method that warns as deprecated).
        meta = {"status": "SUCCESS", "result": 7, "traceback": None, "children": []}
        meta.update(task_id=task_id, date_done=datetime.now(UTC).isoformat())
        backend.client.set(backend.get_key_for_task(task_id), backend.encode(meta))
        restarted = TaskBook()
        store = Store(sessions, "default")
        stats = await reconcile(backend, restarted, publish, window=timedelta(hours=1), store=store)
        await bus.drain()
    finally:
        consumer.stop()
        await running
        await bus.close()
    assert stats.published == 1
    async with sessions() as session:
        after = await tasks.get(session, "default", task_id)
    assert after is not None and (after.state, after.attempt) == (TaskState.COMPLETED, 2)


async def wait_running(database: str, ids: set[str], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        found = await records(database)
        if all(i in found and found[i].state is TaskState.RUNNING for i in ids):
            return
        assert time.monotonic() < deadline, "the gated tasks were never seen running"
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture
async def bus_prefix(redis_url: str) -> AsyncIterator[str]:
    """A trackd bus key prefix of this test's own on the test Redis; deleted afterwards."""
    prefix = f"test-celery-{uuid.uuid4().hex[:12]}"
    yield prefix
    with Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


async def test_instrumented_app_without_events_agrees_with_the_result_backend(
    celery_env: dict[str, str],
    redis_url: str,
    bus_prefix: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """instrument(app) through Celery's signals, in the client and in a worker without -E."""
    from celery import chain

    bus_url = f"{redis_url}?prefix={bus_prefix}"
    monkeypatch.setenv("TRACKD_TEST_CELERY_INSTRUMENT", bus_url)
    app = load_app()
    worker = start_worker(
        {**celery_env, "TRACKD_TEST_CELERY_INSTRUMENT": bus_url},
        tmp_path / "worker.log",
        events=False,
        pool="solo",
    )
    try:
        results = send_mix(app, 30) + revoked(app, 5)
        flow = chain(app.add.s(1, 2), app.add.s(3), app.add.s(4)).apply_async()
        wait_ready([*results, flow])
        assert app.instrumentation.flush(10)
        every = {r.id for r in results} | set(workflow_ids(flow))
        assert len(every) == 38
        bus = from_url(bus_url)
        try:
            deadline = time.monotonic() + 30
            while True:
                consumer = IngestConsumer(bus, sessions, IngestOptions(idle_wait=0.3))
                await consumer.run(burst=True)
                async with sessions() as session:
                    found = await tasks.load_many(session, [("default", i) for i in every])
                recs = {task_id: rec for (_, task_id), rec in found.items()}
                if len(recs) == len(every) and all(r.terminal for r in recs.values()):
                    break
                assert time.monotonic() < deadline, "the worker's events never all arrived"
        finally:
            await bus.close()
        assert_agrees_with_backend(app, recs, every)
        assert max(r.attempt for r in recs.values()) == 4
        assert all(
            r.result and "runtime" in r.result
            for r in recs.values()
            if r.state is TaskState.COMPLETED
        )
    finally:
        app.instrumentation.close(5)
        app.instrumentation.disconnect()
        worker.stop()
    assert "-E" not in worker.popen.args  # type: ignore[operator]
