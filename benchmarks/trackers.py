"""League trackers refreshed at scale: N trackers' daily refresh due at once, run by `trackd
scheduler` and `trackd worker` processes against a local fake of the stats site (issue 5).

    python -m benchmarks.trackers --database-url URL --redis-url URL [--trackers 300]

prints one JSON line (`python -m benchmarks` runs it as its `trackers` section). Per run:

1. N live trackers are stored with the tracker repository's own insert (`create_many`, in
   batches) and each gets its real daily refresh schedule (`polling.start_daily`, the cron
   schedule registration makes). Registration's other work is left out: its first poll
   (four requests, a different job from a refresh) and the guild bookkeeping.
2. `trackd scheduler` and `trackd worker` start as subprocesses on a Redis bus of their own
   (a key prefix per run), with fetching on, private addresses allowed (the fake listens on
   127.0.0.1) and the per-host rate limit raised for the one local host (see `--rate`).
3. Every daily schedule is made due at one instant t0 (its next run moved to t0): the worst
   case of a refresh, all of it at once, where a deployment's jitter spreads it over an hour.
4. Once every poll has finished, both processes get SIGTERM and their peak RSS is read from
   the kernel's high-water mark of each (VmHWM).

Figures: polls/s end to end (N / (t0 → the last poll's snapshot committed)); lag = a poll's
start (`started_at`) minus its due time (`scheduled_for`, t0), p50/p99/max, which in a burst is
mostly the queue before the worker's slots; fired = when the scheduler's request for the poll
reached the bus, minus t0 (the scheduler's own share of the lag); failures, retries and blocks
(all must be 0); snapshots stored; requests answered by the fake; each process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.stats_site import StatsSite
from trackd.bus.urls import from_url
from trackd.domain.league import PLATFORMS, profile
from trackd.domain.polls import FINISHED, PollStatus
from trackd.league import polling
from trackd.scheduling.requests import POLL_REQUESTS, decode_request
from trackd.settings import Settings
from trackd.sources.registry import registry as source_registry
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade
from trackd.store.models import PollRow, ScheduleRow, SnapshotRow
from trackd.store.repos import league_trackers as tracker_repo

TENANT: Final = "league"
TRACKERS_PER_USER: Final = 4  # the default TRACKD_TRACKER_USER_LIMIT: every user is full
SETUP_BATCH: Final = 500
# The default per-host limit (2/s, bursts of 5) is meant for the real site and would make a
# 10,000-tracker refresh take 83 minutes whatever trackd can do; against the one local host
# the benchmark raises it far above what a worker reaches, so the figure is trackd's own.
DEFAULT_RATE: Final = 5000.0
DEFAULT_CONCURRENCY: Final = 16
OBSERVER_GROUP: Final = "bench-observer"
_REDIS_ENTRY = re.compile(r"(?:^|:)(\d{10,})-\d+$")


@dataclass
class TrackersResult:
    backend: str
    trackers: int
    workers: int
    concurrency: int
    rate_per_host: float
    burst: int
    setup_s: float
    seconds: float
    completed: int
    failed: int
    retried: int
    blocked: int
    unfinished: int
    snapshots: int
    requests: int
    polls_per_s: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    fired_p99_s: float
    fired_max_s: float
    worker_rss_start_mib: float
    worker_peak_rss_mib: float
    scheduler_peak_rss_mib: float


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (`q` in 0..100) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def trackd_executable() -> str:
    beside = Path(sys.executable).parent / "trackd"
    found = str(beside) if beside.exists() else shutil.which("trackd")
    if found is None:
        raise RuntimeError("no trackd executable; install the project (pip install -e '.[dev]')")
    return found


class Child:
    """A trackd subprocess, its output in a log file and its peak RSS noted while it runs.

    The peak is the kernel's high-water mark of the process's own memory (VmHWM), read until
    just before it is stopped. Not the rusage of `os.wait4`: a child forked from the benchmark
    starts its `ru_maxrss` at the benchmark's own RSS (Linux keeps the larger of the two
    across exec), which is larger than a worker's.
    """

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        self.peak_rss_mib = float("nan")

    def alive(self) -> bool:
        if self.proc.poll() is None:
            return True
        self._out.close()
        return False

    def _status(self, field: str) -> float:
        """A memory line of /proc/PID/status in MiB; NaN once the process is gone."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return float("nan")
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def rss_mib(self) -> float:
        return self._status("VmRSS")

    def note_peak(self) -> None:
        peak = self._status("VmHWM")
        if peak == peak:  # not NaN: the process was still there
            self.peak_rss_mib = peak

    async def stop(self, grace: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if self.alive():
            self.note_peak()
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive():
            if time.monotonic() > deadline:
                self.proc.kill()
                deadline = time.monotonic() + 10
            await asyncio.sleep(0.1)
        assert self.proc.returncode is not None
        return self.proc.returncode

    def tail(self, lines: int = 15) -> str:
        self._out.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def started(self, marker: str, within: float = 60.0) -> None:
        """Wait until its log shows `marker`, at most `within` seconds."""
        deadline = time.monotonic() + within
        while marker not in self.log.read_text(errors="replace"):
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start in {within:.0f} s:\n{self.tail()}")
            await asyncio.sleep(0.05)


async def create_trackers(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, count: int, *, now: datetime
) -> None:
    """`count` live trackers (four per user, over every platform), each with its daily
    refresh schedule, in batches of SETUP_BATCH per transaction."""
    platforms = sorted(PLATFORMS)
    for start in range(0, count, SETUP_BATCH):
        new = [
            tracker_repo.NewTracker(
                user_id=f"player-{i // TRACKERS_PER_USER}",
                profile=profile(platforms[i % len(platforms)], f"bench_player_{i:06d}"),
            )
            for i in range(start, min(count, start + SETUP_BATCH))
        ]
        async with sessions() as session, session.begin():
            rows = await tracker_repo.create_many(session, TENANT, new, now=now)
            for row in rows:
                await polling.start_daily(session, row, settings, now=now)


async def make_due(sessions: async_sessionmaker[AsyncSession], at: datetime) -> int:
    """Move every active schedule's next run to `at`; returns how many."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(ScheduleRow)
            .where(ScheduleRow.status == "active")
            .values(next_nominal_at=at, next_run_at=at)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def finished_polls(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        done = await session.scalar(
            select(func.count())
            .select_from(PollRow)
            .where(PollRow.status.in_([s.value for s in FINISHED]))
        )
    return int(done or 0)


class Observer:
    """Notes when each poll request reached the bus, from a consumer group of its own."""

    def __init__(self, bus_url: str) -> None:
        self._bus = from_url(bus_url)
        self.fired: dict[uuid.UUID, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        subscription = await self._bus.subscribe([POLL_REQUESTS], OBSERVER_GROUP, "bench")
        self._task = asyncio.create_task(self._run(subscription))

    async def _run(self, subscription: Any) -> None:
        try:
            while not self._stopping.is_set():
                messages = await subscription.fetch(1000, 0.2)
                received = time.time()
                for message in messages:
                    poll_id = decode_request(message.body)
                    if poll_id is not None:
                        self.fired.setdefault(poll_id, _entry_time(message.id) or received)
                if messages:
                    await subscription.ack(messages)
        finally:
            await subscription.close()

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self._bus.close()


def _entry_time(message_id: str) -> float | None:
    """When Redis took the entry (its id is `<ms>-<seq>`), in epoch seconds."""
    match = _REDIS_ENTRY.search(message_id)
    return int(match.group(1)) / 1000 if match else None


async def _drop_redis_keys(redis_url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url.split("?", 1)[0])
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def _database(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def measure(
    database_url: str,
    redis_url: str,
    *,
    trackers: int,
    concurrency: int = DEFAULT_CONCURRENCY,
    workers: int = 1,
    rate: float = DEFAULT_RATE,
    time_limit: float | None = None,
    backend: str | None = None,
    profile_dir: Path | None = None,
) -> TrackersResult:
    """Refresh `trackers` trackers due at once on `database_url` (migrated here); see the
    module docstring. Raises RuntimeError when a process dies or the run outlasts `time_limit`
    (default: 120 s plus 50 ms per tracker). With `profile_dir`, each worker runs under
    pyinstrument and leaves its profile there (worker-N.txt)."""
    sqlite = database_url.startswith("sqlite")
    if sqlite and workers > 1:
        raise ValueError("SQLite takes one worker process (its own concurrency is fine)")
    burst = concurrency
    prefix = f"bench-trackers-{uuid.uuid4().hex[:12]}"
    bus_url = f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}"
    time_limit = time_limit if time_limit is not None else 120 + 0.05 * trackers
    await upgrade(database_url)
    settings = Settings(database_url=database_url)
    # Registering trackers validates their targets with the sources this process runs with.
    source_registry.configure(settings)
    children: list[Child] = []
    observer = Observer(bus_url)
    with StatsSite() as site, tempfile.TemporaryDirectory(prefix="trackd-bench-") as tmp:
        try:
            async with _database(database_url) as sessions:
                setup_started = time.perf_counter()
                await create_trackers(sessions, settings, trackers, now=datetime.now(UTC))
                setup_s = time.perf_counter() - setup_started

                env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
                env.update(
                    PYTHONUNBUFFERED="1",
                    TRACKD_DATABASE_URL=database_url,
                    TRACKD_BUS_URL=bus_url,
                    TRACKD_TRN_ENABLED="true",
                    TRACKD_TRN_API_URL=site.url,
                    TRACKD_ALLOW_PRIVATE_FETCH="true",
                    TRACKD_FETCH_RATE_PER_HOST=str(rate),
                    TRACKD_FETCH_BURST=str(burst),
                    TRACKD_POLL_CONCURRENCY=str(concurrency),
                )
                exe = trackd_executable()
                await observer.start()
                children.append(
                    Child("scheduler", [exe, "scheduler"], env, Path(tmp, "scheduler.log"))
                )
                for n in range(workers):
                    name = f"worker-{n + 1}"
                    args = [exe, "worker", "--consumer-name", f"bench-{name}"]
                    if profile_dir is not None:
                        out = str(profile_dir / f"{name}.txt")
                        args = [sys.executable, "-m", "pyinstrument", "-o", out, *args]
                    children.append(Child(name, args, env, Path(tmp, f"{name}.log")))
                for child in children:
                    await child.started(f"{child.name.split('-')[0]} started")
                scheduler, pool = children[0], children[1:]
                rss_start = max(w.rss_mib() for w in pool)

                due = datetime.now(UTC) + timedelta(seconds=0.2)
                if await make_due(sessions, due) != trackers:
                    raise RuntimeError("not every daily schedule was made due")
                deadline = time.monotonic() + time_limit
                while await finished_polls(sessions) < trackers:
                    for child in children:
                        child.note_peak()
                        if not child.alive():
                            raise RuntimeError(
                                f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}"
                            )
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"not every poll finished in {time_limit:.0f} s "
                            f"({await finished_polls(sessions)} of {trackers})"
                        )
                    await asyncio.sleep(0.25)
                for child in children:
                    if await child.stop() != 0:
                        raise RuntimeError(f"{child.name} did not stop cleanly:\n{child.tail()}")
                await observer.stop()

                async with sessions() as session:
                    polls = (
                        await session.execute(
                            select(
                                PollRow.id,
                                PollRow.status,
                                PollRow.attempt,
                                PollRow.blocks,
                                PollRow.scheduled_for,
                                PollRow.started_at,
                                PollRow.finished_at,
                            )
                        )
                    ).all()
                    snapshots = int(
                        await session.scalar(select(func.count()).select_from(SnapshotRow)) or 0
                    )
        finally:
            for child in children:
                with contextlib.suppress(Exception):
                    await child.stop(grace=5)
            with contextlib.suppress(Exception):
                await observer.stop()
            await _drop_redis_keys(redis_url, prefix)
        requests = site.served

    completed = [p for p in polls if p.status == PollStatus.COMPLETED.value]
    lags = [
        (p.started_at - p.scheduled_for).total_seconds()
        for p in polls
        if p.started_at is not None and p.scheduled_for is not None
    ]
    t0 = due.timestamp()
    fired = [at - t0 for at in observer.fired.values()]
    last = max((p.finished_at for p in completed if p.finished_at), default=due)
    seconds = (last - due).total_seconds()
    return TrackersResult(
        backend=backend or ("sqlite" if sqlite else "postgresql"),
        trackers=trackers,
        workers=workers,
        concurrency=concurrency,
        rate_per_host=rate,
        burst=burst,
        setup_s=setup_s,
        seconds=seconds,
        completed=len(completed),
        failed=sum(1 for p in polls if p.status == PollStatus.FAILED.value),
        retried=sum(1 for p in polls if p.attempt > 1),
        blocked=sum(1 for p in polls if p.blocks > 0),
        unfinished=sum(1 for p in polls if p.status not in {s.value for s in FINISHED}),
        snapshots=snapshots,
        requests=requests,
        polls_per_s=len(completed) / seconds if seconds > 0 else float("nan"),
        lag_p50_s=percentile(lags, 50),
        lag_p99_s=percentile(lags, 99),
        lag_max_s=max(lags, default=float("nan")),
        fired_p99_s=percentile(fired, 99),
        fired_max_s=max(fired, default=float("nan")),
        worker_rss_start_mib=rss_start,
        worker_peak_rss_mib=max(w.peak_rss_mib for w in pool),
        scheduler_peak_rss_mib=scheduler.peak_rss_mib,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="a database to run on")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TRACKD_TEST_REDIS_URL"),
        help="the Redis the processes share as their bus (a key prefix of its own per run)",
    )
    parser.add_argument("--trackers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE)
    parser.add_argument("--profile-dir", type=Path, help="run the workers under pyinstrument")
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("--redis-url (or TRACKD_TEST_REDIS_URL) is needed: the processes share it")
    result = asyncio.run(
        measure(
            args.database_url,
            args.redis_url,
            trackers=args.trackers,
            concurrency=args.concurrency,
            workers=args.workers,
            rate=args.rate,
            profile_dir=args.profile_dir,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
