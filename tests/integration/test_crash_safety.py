"""Crash safety on real Redis and PostgreSQL: what a dead ingest process, a restarted Redis and
an unreachable PostgreSQL do to the records.

1. `kill -9` of an ingest process mid-stream, then a new one: zero lost, zero duplicated
   records, and the same records a clean, uninterrupted run gives.
2. Redis stopped and restarted (append-only, fsync always) while a producer publishes: each
   publish either returns (its events are stored) or raises BusUnavailableError (published
   again, as a producer would); nothing stored twice.
3. PostgreSQL unreachable (a TCP proxy in between, cut for a few seconds) while events are
   published and consumed: ingestion pauses, fetches nothing more than it holds (the group's
   pending list stays bounded), and resumes with nothing lost.

Every test keeps to a Redis key prefix (or a Redis server) of its own and its own databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from trackd.bus.base import Bus
from trackd.bus.memory import MemoryBus
from trackd.bus.redis.bus import RedisStreamsBus
from trackd.errors import BusUnavailableError
from trackd.ingest.consumer import INGEST_GROUP, IngestConsumer, IngestOptions
from trackd.store.engine import create_engine, session_factory

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

Triple = tuple[str, str, bytes]


def _load_workload() -> Any:
    """benchmarks/workload.py: the realistic mix the benchmarks ingest (not a package)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "workload.py"
    spec = importlib.util.spec_from_file_location("trackd_bench_workload", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


workload = _load_workload()


# -- helpers ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _event_ids(stream: Sequence[Triple]) -> set[str]:
    return {json.loads(body)["id"] for _, _, body in stream}


def _chunks(stream: Sequence[Triple], size: int) -> Iterator[tuple[str, list[Triple]]]:
    """Slices of `size` events, each split by topic (keeping the order within a topic), as a
    producer batching per topic publishes them."""
    for start in range(0, len(stream), size):
        by_topic: dict[str, list[Triple]] = {}
        for item in stream[start : start + size]:
            by_topic.setdefault(item[0], []).append(item)
        yield from by_topic.items()


async def _publish(bus: Bus, chunks: Iterable[tuple[str, list[Triple]]]) -> None:
    for topic, run in chunks:
        await bus.publish(topic, [b for _, _, b in run], [k for _, k, _ in run])


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


async def _wait_for(engine: AsyncEngine, table: str, target: int, within: float) -> int:
    deadline = time.monotonic() + within
    n = await _count(engine, table)
    while n < target and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        n = await _count(engine, table)
    return n


async def _assert_exact(engine: AsyncEngine, stream: Sequence[Triple], tasks: int) -> None:
    """Every distinct event stored once; every task completed once, with its metrics."""
    ids = _event_ids(stream)
    async with engine.connect() as conn:

        async def one(sql: str) -> Any:
            return (await conn.execute(text(sql))).one()

        timeline, distinct = await one(
            "SELECT count(*), count(DISTINCT event_id) FROM event_timeline"
        )
        assert (timeline, distinct) == (len(ids), len(ids))
        stored = {r[0] for r in await conn.execute(text("SELECT event_id FROM event_timeline"))}
        assert stored == ids
        total, done, full = await one(
            "SELECT count(*), count(*) FILTER (WHERE state = 'completed'), "
            "count(*) FILTER (WHERE progress = 1.0) FROM task_executions"
        )
        assert (total, done, full) == (tasks, tasks, tasks)
        metric_total, metric_done = await one(
            "SELECT coalesce(sum(total_tasks), 0), coalesce(sum(completed_tasks), 0) "
            "FROM agent_metrics"
        )
        assert (metric_total, metric_done) == (tasks, tasks)
        # Each plan's task counters (kept by ingest) equal a count of its tasks.
        counted = await conn.execute(
            text(
                "SELECT tenant_id, plan_id, count(*), "
                "count(*) FILTER (WHERE state = 'completed') FROM task_executions "
                "WHERE plan_id IS NOT NULL GROUP BY tenant_id, plan_id"
            )
        )
        kept = await conn.execute(
            text(
                "SELECT tenant_id, plan_id, pending + running + delegated + waiting + completed "
                "+ failed + cancelled, completed FROM plan_task_counts"
            )
        )
        want = {tuple(r) for r in counted}
        assert {tuple(r) for r in kept} == want and len(want) > 1
        (dead,) = await one("SELECT count(*) FROM dead_letters")
        assert dead == 0


async def _transitions(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT task_id, event_id, from_state, to_state, attempt FROM state_transitions "
                "ORDER BY task_id, transitioned_at, event_id"
            )
        )
        return [tuple(r) for r in rows]


CRASH_BATCH = 500  # events per batch of every ingest run here


async def _clean_run(url: str, chunks: Iterable[tuple[str, list[Triple]]]) -> None:
    """The chunks, in the order given, through the in-process memory bus and one
    uninterrupted consumer."""
    engine = create_engine(url)
    bus = MemoryBus()
    # Batched as the spawned processes batch: within a batch a task's events are folded in
    # their own order, so which event a transition is credited to follows the batches.
    options = IngestOptions(consumer="clean", batch_size=CRASH_BATCH)
    consumer = IngestConsumer(bus, session_factory(engine), options)
    task = asyncio.create_task(consumer.run())
    try:
        # In the order given: each publish enqueues before its first await, and returns once
        # committed, so they run together.
        await asyncio.gather(
            *(
                asyncio.create_task(bus.publish(t, [b for _, _, b in r], [k for _, k, _ in r]))
                for t, r in chunks
            )
        )
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 20)
        await bus.close()
        await engine.dispose()


@pytest_asyncio.fixture
async def prefixed_redis(redis_url: str) -> AsyncIterator[tuple[str, str]]:
    """(redis URL, key prefix of this test); the prefix's keys are deleted afterwards."""
    prefix = f"crash-{uuid.uuid4().hex[:12]}"
    yield redis_url, prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


def _bus_url(redis_url: str, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{redis_url}{'&' if '?' in redis_url else '?'}{query}"


def _spawn_ingest(
    database_url: str, bus_url: str, name: str, *, burst: bool, log: Path
) -> subprocess.Popen[bytes]:
    """A `trackd ingest` process (its output goes to `log`)."""
    args = [
        sys.executable,
        "-c",
        "from trackd.cli.main import app; app()",
        "ingest",
        "--database-url",
        database_url,
        "--bus-url",
        bus_url,
        "--consumer-name",
        name,
    ]
    if burst:
        args.append("--burst")
    env = {
        **os.environ,
        "TRACKD_INGEST_BATCH_SIZE": str(CRASH_BATCH),
        "TRACKD_LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


# -- 1. kill -9 mid-stream --------------------------------------------------------------------

CRASH_TASKS = 6200  # 8 events a task and 1 % duplicates: 50,096 events


@POSTGRES_ONLY
@pytest.mark.timeout(300)
async def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    engine: AsyncEngine,
    database_url: str,
    postgres_databases: Callable[[], AbstractAsyncContextManager[str]],
    prefixed_redis: tuple[str, str],
    tmp_path: Path,
) -> None:
    redis_url, prefix = prefixed_redis
    stream = workload.build(CRASH_TASKS)
    ids = _event_ids(stream)
    assert len(stream) >= 50_000
    # Short leases, so the restarted process takes the dead one's partitions soon.
    lease_ttl = 2
    bus_url = _bus_url(redis_url, prefix=prefix, lease_ttl=lease_ttl)
    publisher = RedisStreamsBus.from_url(bus_url)
    try:
        await _publish(publisher, _chunks(stream, 5000))
    finally:
        await publisher.close()

    log = tmp_path / "ingest.log"
    first = _spawn_ingest(database_url, bus_url, "crash-first", burst=False, log=log)
    try:
        deadline = time.monotonic() + 60
        at_kill = 0
        while time.monotonic() < deadline and first.poll() is None:
            at_kill = await _count(engine, "event_timeline")
            if at_kill >= 5000:
                break
            await asyncio.sleep(0.02)
        assert first.poll() is None, log.read_text()
    finally:
        _kill(first)
    at_kill = await _count(engine, "event_timeline")
    assert 0 < at_kill < len(ids), f"killed with {at_kill} of {len(ids)} events stored"

    # The dead process's leases and presence expire after one ttl; a restart comes later.
    await asyncio.sleep(lease_ttl + 0.5)
    second = _spawn_ingest(database_url, bus_url, "crash-second", burst=True, log=log)
    try:
        await asyncio.to_thread(second.wait, 120)
    finally:
        _kill(second)
    assert second.returncode == 0, log.read_text()
    stored = await _count(engine, "event_timeline")
    assert stored == len(ids), f"{stored} of {len(ids)} events stored after the restart"
    await _assert_exact(engine, stream, CRASH_TASKS)

    # The same records as one uninterrupted run of the same stream.
    async with postgres_databases() as clean_url:
        # Published as the crashed run was: a task's events, in that order.
        await _clean_run(clean_url, _chunks(stream, 5000))
        clean = create_engine(clean_url)
        try:
            await _assert_exact(clean, stream, CRASH_TASKS)
            expected = await _transitions(clean)
        finally:
            await clean.dispose()
    got = await _transitions(engine)
    # Crash safety proper: no transition recorded twice, every task's completion once.
    assert len(set(got)) == len(got)
    completions = [r[0] for r in got if r[3] == "completed"]
    assert sorted(completions) == sorted({r[0] for r in expected})
    # And in the same order: a takeover hands the dead process's pending entries out merged
    # with new ones by id, so each task's events are folded as they were published.
    missing = sorted(set(expected) - set(got))[:3]
    extra = sorted(set(got) - set(expected))[:3]
    assert got == expected, (
        f"state_transitions differ from a clean run of the same publishes ({len(got)} vs "
        f"{len(expected)}; missing e.g. {missing}, extra e.g. {extra})"
    )


# -- 2. Redis restarted while publishing ------------------------------------------------------


class RedisServer:
    """A private redis-server: append-only, fsync always, on its own port and directory."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.dir = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if await client.ping():
                        return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)


@pytest_asyncio.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


RESTART_TASKS = 1000


@POSTGRES_ONLY
async def test_redis_restart_while_publishing_loses_nothing(
    engine: AsyncEngine, private_redis: RedisServer
) -> None:
    stream = workload.build(RESTART_TASKS)
    runs = list(_chunks(stream, 100))
    # Redis stays away for longer than a publish retries, so some calls must fail.
    publisher = RedisStreamsBus.from_url(_bus_url(private_redis.url, publish_timeout=1))
    confirmed: set[str] = set()
    failures = 0
    restarted = asyncio.Event()

    async def restart() -> None:
        await private_redis.stop()
        await asyncio.sleep(2.5)
        await private_redis.start()
        restarted.set()

    restarter: asyncio.Task[None] | None = None
    try:
        for i, (topic, run) in enumerate(runs):
            if i == len(runs) // 3:
                restarter = asyncio.create_task(restart())
            while True:
                try:
                    await publisher.publish(topic, [b for _, _, b in run], [k for _, k, _ in run])
                except BusUnavailableError:
                    failures += 1
                    await asyncio.sleep(0.1)
                    continue  # a producer publishes the same events again
                confirmed |= _event_ids(run)
                break
            await asyncio.sleep(0.01)
        assert restarter is not None
        await asyncio.wait_for(restarter, 30)
    finally:
        if restarter is not None and not restarter.done():
            restarter.cancel()
        await publisher.close()
    assert restarted.is_set()
    assert failures > 0, "Redis was away longer than publish_timeout; some publish should fail"
    assert confirmed == _event_ids(stream)

    bus = RedisStreamsBus.from_url(private_redis.url)
    consumer = IngestConsumer(
        bus, session_factory(engine), IngestOptions(consumer="after-restart", idle_wait=2.0)
    )
    try:
        await asyncio.wait_for(consumer.run(burst=True), 60)
    finally:
        await bus.close()
    await _assert_exact(engine, stream, RESTART_TASKS)


# -- 3. PostgreSQL unreachable ----------------------------------------------------------------


class CuttableProxy:
    """A TCP proxy to `target` that can be cut (connections closed, new ones refused)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            for w in (writer, up_writer):
                w.transport.abort()
                self._writers.discard(w)
            self._tasks.difference_update(pumps)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


async def _pending(redis: Redis, prefix: str) -> int:
    """Entries delivered to the ingest group and not acknowledged, over all its streams."""
    total = 0
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000, _type="stream"):
        with contextlib.suppress(Exception):
            total += int((await redis.xpending(key, INGEST_GROUP))["pending"])
    return total


PAUSE_TASKS = 600
PAUSE_BATCH = 100


@POSTGRES_ONLY
async def test_postgres_unreachable_pauses_and_resumes_with_bounded_memory(
    engine: AsyncEngine, database_url: str, prefixed_redis: tuple[str, str]
) -> None:
    redis_url, prefix = prefixed_redis
    stream = workload.build(PAUSE_TASKS)
    runs = list(_chunks(stream, 50))
    url = make_url(database_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.open()
    proxied = create_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        connect_args={"timeout": 2},
    )
    bus_url = _bus_url(redis_url, prefix=prefix)
    publisher = RedisStreamsBus.from_url(bus_url)
    consumer_bus = RedisStreamsBus.from_url(bus_url)
    redis = Redis.from_url(redis_url)
    consumer = IngestConsumer(
        consumer_bus,
        session_factory(proxied),
        IngestOptions(consumer="behind-proxy", batch_size=PAUSE_BATCH, idle_wait=0.5),
    )
    published = 0

    async def publish_all() -> None:
        nonlocal published
        for topic, run in runs:
            await publisher.publish(topic, [b for _, _, b in run], [k for _, k, _ in run])
            published += len(run)
            await asyncio.sleep(0.02)

    ingesting = asyncio.create_task(consumer.run())
    publishing = asyncio.create_task(publish_all())
    try:
        assert await _wait_for(engine, "event_timeline", 500, 20) >= 500
        await proxy.cut()
        cut_at = time.monotonic()
        published_at_cut = published
        await asyncio.sleep(0.5)  # a commit under way when cut fails, none lands after
        stored_at_cut = await _count(engine, "event_timeline")
        pending_max = 0
        while time.monotonic() - cut_at < 5:
            pending_max = max(pending_max, await _pending(redis, prefix))
            assert await _count(engine, "event_timeline") == stored_at_cut
            await asyncio.sleep(0.2)
        published_while_cut = published - published_at_cut
        assert consumer.stats.failures > 0
        # Paused: what the consumer took from Redis is the batch it retries and at most one
        # read beyond it, though far more was published meanwhile.
        assert published_while_cut > 5 * PAUSE_BATCH
        assert 0 < pending_max <= 3 * PAUSE_BATCH, (pending_max, published_while_cut)
        assert stored_at_cut < len(_event_ids(stream))

        await proxy.open()
        await asyncio.wait_for(publishing, 60)
        ids = _event_ids(stream)
        assert await _wait_for(engine, "event_timeline", len(ids), 60) == len(ids)
    finally:
        consumer.stop()
        publishing.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await publishing
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(ingesting, 20)
        await proxy.cut()
        await publisher.close()
        await consumer_bus.close()
        await redis.aclose()
        await proxied.dispose()
    await _assert_exact(engine, stream, PAUSE_TASKS)
    redis = Redis.from_url(redis_url)
    try:
        assert await _pending(redis, prefix) == 0
    finally:
        await redis.aclose()
