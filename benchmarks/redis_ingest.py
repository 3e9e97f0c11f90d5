"""Redis Streams + PostgreSQL: `trackd ingest` processes draining a published backlog.

    python -m benchmarks.redis_ingest --postgres-url URL --redis-url URL [--tasks 5000] \
        [--processes 1 2]

prints one JSON line per figure (`python -m benchmarks` runs it as its `redis_ingest`
section). The events are the ingest section's mix (benchmarks/workload.py), so the figures
compare with the in-memory bus's.

Per process count N, on a scratch PostgreSQL database and a key prefix of its own:

1. The mix is published to the streams, except the last event of each partition.
2. The ingest group is created at the streams' end, so the N `trackd ingest` processes then
   started find nothing to read while they share the partitions out (waited for: every
   partition leased, N fair shares).
3. The group is moved back to the streams' start and the held-back events are published:
   they wake the processes' blocked reads. The clock starts here.
4. The clock stops once the group has had every entry delivered and acknowledged; an entry is
   acknowledged only after the batch that holds it is committed.
5. The database is checked: every event on the timeline once, every task completed, no dead
   letter. The processes' CPU time is read from /proc meanwhile.

The bus side's ceiling, in the same run, on the same mix under a prefix of its own: plain
XREADGROUP (COUNT 1000 per stream) + pipelined XACK from one client, and the bus's own
consumer (`fetch` + `ack` in batches of 1,000, nothing stored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from rich.table import Table
from sqlalchemy import text

from benchmarks import workload
from benchmarks.fleet import cpu_seconds
from benchmarks.ingest import scratch_database
from benchmarks.trackers import Child, _drop_redis_keys, trackd_executable
from trackd.bus.redis.bus import RedisStreamsBus
from trackd.bus.redis.layout import RedisStreamsOptions, partition_of, stream_name
from trackd.domain.events import PLATFORM_TOPICS
from trackd.ingest.consumer import INGEST_GROUP
from trackd.store.engine import create_engine

Stream = Sequence[tuple[str, str, bytes]]
PARTITIONS = RedisStreamsOptions().partitions
POLL_S = 0.025  # how often the group's progress is read while the processes drain
PUBLISH_CHUNK = 2000
READY_WITHIN_S = 60.0


@dataclass
class DrainResult:
    """`trackd ingest` processes draining the backlog into PostgreSQL."""

    processes: int
    events: int
    seconds: float
    events_per_s: float
    cpu_seconds: float
    events_per_cpu_s: float
    publish_events_per_s: float
    kind: str = "ingest"


@dataclass
class CeilingResult:
    """The same backlog read and acknowledged with nothing stored."""

    reader: str
    events: int
    seconds: float
    events_per_s: float
    kind: str = "bus"


def bus_url(redis_url: str, prefix: str) -> str:
    return f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}"


def streams(prefix: str) -> list[str]:
    return [stream_name(prefix, t, p) for t in PLATFORM_TOPICS for p in range(PARTITIONS)]


async def publish(url: str, events: Stream) -> float:
    """Publish `(topic, key, body)` in order, a chunk at a time; returns the seconds taken."""
    bus = RedisStreamsBus.from_url(url)
    try:
        started = time.perf_counter()
        for start in range(0, len(events), PUBLISH_CHUNK):
            by_topic: dict[str, tuple[list[bytes], list[str | None]]] = defaultdict(
                lambda: ([], [])
            )
            for topic, key, body in events[start : start + PUBLISH_CHUNK]:
                bodies, keys = by_topic[topic]
                bodies.append(body)
                keys.append(key)
            await asyncio.gather(*(bus.publish(t, b, k) for t, (b, k) in by_topic.items()))
        return time.perf_counter() - started
    finally:
        await bus.close()


def split_tail(events: Stream) -> tuple[list[tuple[str, str, bytes]], list[tuple[str, str, bytes]]]:
    """The mix without the last event of each partition, and those last events: published
    after everything else in their partition, they keep each key's order."""
    last: dict[int, int] = {}
    for i, (_, key, _) in enumerate(events):
        last[partition_of(key, PARTITIONS)] = i
    tail_at = set(last.values())
    bulk = [e for i, e in enumerate(events) if i not in tail_at]
    tail = [e for i, e in enumerate(events) if i in tail_at]
    return bulk, tail


async def leases_shared(client: Redis, prefix: str, names: Sequence[str]) -> bool:
    """Whether every partition is leased and each process holds its fair share."""
    owners = await client.mget([f"{prefix}:lease:{INGEST_GROUP}:{p}" for p in range(PARTITIONS)])
    if any(o is None for o in owners):
        return False
    held = Counter(o.decode() if isinstance(o, bytes) else o for o in owners)
    least = PARTITIONS // len(names)
    return set(held) == set(names) and all(held[n] >= least for n in names)


async def drained(client: Redis, last_ids: dict[str, bytes]) -> bool:
    """Whether the ingest group has every entry delivered and none pending."""
    async with client.pipeline(transaction=False) as pipe:
        for stream in last_ids:
            pipe.xinfo_groups(stream)
        replies = await pipe.execute()
    for last, groups in zip(last_ids.values(), replies, strict=True):
        group = next(g for g in groups if g["name"] in (INGEST_GROUP, INGEST_GROUP.encode()))
        if group["pending"] or group["last-delivered-id"] != last:
            return False
    return True


async def check_database(database_url: str, events: Stream, tasks: int) -> None:
    """Every distinct event on the timeline once, every task completed, no dead letter."""
    unique = len({json.loads(body)["id"] for _, _, body in events})
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            timeline = await conn.scalar(text("SELECT count(*) FROM event_timeline"))
            completed = await conn.scalar(
                text("SELECT count(*) FROM task_executions WHERE state = 'completed'")
            )
            letters = await conn.scalar(text("SELECT count(*) FROM dead_letters"))
    finally:
        await engine.dispose()
    if (timeline, completed, letters) != (unique, tasks, 0):
        raise RuntimeError(
            f"the store does not hold the mix: {timeline} timeline rows of {unique} events, "
            f"{completed} of {tasks} tasks completed, {letters} dead letters"
        )


async def drain(
    admin_url: str,
    redis_url: str,
    events: Stream,
    tasks: int,
    processes: int,
    profile: Path | None = None,
) -> DrainResult:
    """N `trackd ingest` processes drain the published mix (see the module docstring); with
    `profile`, py-spy samples the first process into that flame graph (SVG) meanwhile."""
    prefix = f"bench-ri-{uuid.uuid4().hex[:10]}"
    url = bus_url(redis_url, prefix)
    bulk, tail = split_tail(events)
    client = Redis.from_url(redis_url.split("?", 1)[0])
    children: list[Child] = []
    try:
        async with scratch_database(admin_url, "redis_ingest") as database_url:
            publish_s = await publish(url, bulk)
            async with client.pipeline(transaction=False) as pipe:
                for stream in streams(prefix):
                    pipe.xgroup_create(stream, INGEST_GROUP, id="$", mkstream=True)
                await pipe.execute()
            with tempfile.TemporaryDirectory(prefix="trackd-bench-") as tmp:
                env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
                env.update(
                    PYTHONUNBUFFERED="1", TRACKD_DATABASE_URL=database_url, TRACKD_BUS_URL=url
                )
                names = [f"bench-ingest-{n + 1}" for n in range(processes)]
                for name in names:
                    args = [trackd_executable(), "ingest", "--consumer-name", name]
                    children.append(Child(name, args, env, Path(tmp, f"{name}.log")))
                for child in children:
                    await child.started("ingest started")
                deadline = time.monotonic() + READY_WITHIN_S
                while not await leases_shared(client, prefix, names):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the ingest processes did not share the partitions")
                    await asyncio.sleep(0.05)
                cpu_before = sum(cpu_seconds(c.proc.pid) for c in children)
                spy = _profiler(children[0].proc.pid, profile) if profile else None

                started = time.perf_counter()
                async with client.pipeline(transaction=False) as pipe:
                    for stream in streams(prefix):
                        pipe.xgroup_setid(stream, INGEST_GROUP, "0")
                    await pipe.execute()
                publish_s += await publish(url, tail)
                last_ids = {}
                for stream in streams(prefix):
                    info = await client.xinfo_stream(stream)
                    if info["length"]:
                        last_ids[stream] = info["last-generated-id"]
                while not await drained(client, last_ids):
                    for child in children:
                        if not child.alive():
                            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
                    await asyncio.sleep(POLL_S)
                seconds = time.perf_counter() - started
                cpu = sum(cpu_seconds(c.proc.pid) for c in children) - cpu_before
                for child in children:
                    await child.stop()
                if spy is not None:
                    await asyncio.to_thread(spy.wait, 60)
            await check_database(database_url, events, tasks)
    finally:
        for child in children:
            with contextlib.suppress(Exception):
                await child.stop(grace=5)
        await client.aclose()
        await _drop_redis_keys(redis_url, prefix)
    return DrainResult(
        processes=processes,
        events=len(events),
        seconds=seconds,
        events_per_s=len(events) / seconds,
        cpu_seconds=cpu,
        events_per_cpu_s=len(events) / cpu if cpu else 0.0,
        publish_events_per_s=len(events) / publish_s,
    )


def _profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy attached to `pid` until it exits, writing a flame graph (SVG) to `out`."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    args = [spy, "record", "--pid", str(pid), "--output", str(out), "--rate", "200"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL)


async def raw_drain(client: Redis, prefix: str, total: int) -> float:
    """Plain XREADGROUP + XACK of every stream from one client; returns the seconds."""
    group = "bench-raw"
    names = streams(prefix)
    async with client.pipeline(transaction=False) as pipe:
        for stream in names:
            pipe.xgroup_create(stream, group, id="0", mkstream=True)
        await pipe.execute()
    started = time.perf_counter()
    seen = 0
    positions: dict[Any, Any] = dict.fromkeys(names, ">")
    while seen < total:
        # Typed loosely: redis-py's reply type spans RESP2 and RESP3 shapes.
        reply: Any = await client.xreadgroup(group, "raw", positions, count=1000, block=1000)
        if not reply:
            raise RuntimeError(f"the raw reader found {seen} of {total} entries")
        async with client.pipeline(transaction=False) as pipe:
            for stream, entries in reply:
                pipe.xack(stream, group, *[entry_id for entry_id, _ in entries])
                seen += len(entries)
            await pipe.execute()
    return time.perf_counter() - started


async def bus_drain(url: str, total: int) -> float:
    """The bus's own consumer: fetch and ack batches of 1,000; returns the seconds."""
    bus = RedisStreamsBus.from_url(url)
    try:
        sub = await bus.subscribe(PLATFORM_TOPICS, "bench-bus", "bus")
        started = time.perf_counter()
        seen = 0
        while seen < total:
            batch = await sub.fetch(1000, 1.0)
            if not batch:
                raise RuntimeError(f"the bus consumer found {seen} of {total} entries")
            await sub.ack(batch)
            seen += len(batch)
        return time.perf_counter() - started
    finally:
        await bus.close()


async def ceilings(redis_url: str, events: Stream) -> list[CeilingResult]:
    prefix = f"bench-ri-{uuid.uuid4().hex[:10]}"
    client = Redis.from_url(redis_url.split("?", 1)[0])
    try:
        await publish(bus_url(redis_url, prefix), events)
        raw = await raw_drain(client, prefix, len(events))
        through_bus = await bus_drain(bus_url(redis_url, prefix), len(events))
    finally:
        await client.aclose()
        await _drop_redis_keys(redis_url, prefix)
    n = len(events)
    return [
        CeilingResult("XREADGROUP + XACK", n, raw, n / raw),
        CeilingResult("bus fetch + ack", n, through_bus, n / through_bus),
    ]


async def run(
    postgres_url: str,
    redis_url: str,
    *,
    tasks: int,
    processes: Sequence[int],
    profile: Path | None = None,
) -> list[DrainResult | CeilingResult]:
    events = workload.build(tasks)
    results: list[DrainResult | CeilingResult] = list(await ceilings(redis_url, events))
    for i, n in enumerate(processes):
        spied = profile if i == 0 else None
        results.append(await drain(postgres_url, redis_url, events, tasks, n, spied))
    return results


def table(results: Sequence[DrainResult | CeilingResult]) -> Table:
    """The figures as `python -m benchmarks` prints them."""
    shown = Table(
        "reader",
        "events",
        "seconds",
        "events/s",
        "events/CPU-s",
        "x one process",
        title="Redis Streams -> PostgreSQL: a published backlog drained (same mix as ingest)",
    )
    one = next((r for r in results if isinstance(r, DrainResult) and r.processes == 1), None)
    for r in results:
        if isinstance(r, CeilingResult):
            shown.add_row(r.reader, f"{r.events:,}", f"{r.seconds:.2f}", f"{r.events_per_s:,.0f}")
            continue
        scale = f"{r.events_per_s / one.events_per_s:.2f}" if one else ""
        shown.add_row(
            f"{r.processes} x trackd ingest",
            f"{r.events:,}",
            f"{r.seconds:.2f}",
            f"{r.events_per_s:,.0f}",
            f"{r.events_per_cpu_s:,.0f}",
            scale,
        )
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TRACKD_BENCH_POSTGRES_URL")
        or os.environ.get("TRACKD_TEST_POSTGRES_URL"),
        help="admin URL of a PostgreSQL server (a scratch database per run)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TRACKD_BENCH_REDIS_URL") or os.environ.get("TRACKD_TEST_REDIS_URL"),
    )
    parser.add_argument("--tasks", type=int, default=5000, help="tasks in the mix (9 events each)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy flame graph (SVG) of the first process of the first count",
    )
    args = parser.parse_args()
    if not args.postgres_url or not args.redis_url:
        parser.error("--postgres-url and --redis-url (or TRACKD_TEST_*_URL) are needed")
    if any(n < 1 for n in args.processes):
        parser.error("--processes: each count must be at least 1")
    results = asyncio.run(
        run(
            args.postgres_url,
            args.redis_url,
            tasks=args.tasks,
            processes=args.processes,
            profile=args.profile,
        )
    )
    for result in results:
        print(json.dumps(asdict(result)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
