"""The daily transit refresh of N users with natal charts, end to end through `trackd scheduler`,
`trackd worker` processes and the store (issue 12's scale goal: 100,000 users under 60 s on
2 cores).

    python -m benchmarks.transits --database-url URL --redis-url URL [--users 100000]

prints one JSON line. Per run:

1. N charts are stored in bulk (not timed). Their points are those of real charts (`natal_chart`
   for a few hundred births spread over 1930-2010 and the globe) each turned by a random angle,
   so that every user has their own aspects at the realistic density (about 30 per user with
   the default orbs) without computing N charts first.
2. The tenant's daily refresh is scheduled as `PUT /v1/me/natal` does (`ensure_refresh_schedule`,
   `--shards` polls), and `trackd scheduler` and `--workers` `trackd worker` processes start on a
   Redis bus of their own (a key prefix per run).
3. The schedule is made due at t0; once every poll has finished the processes are stopped.

Figures: seconds from t0 to the last poll's commit, users per second, milliseconds of wall
time per user and of worker CPU per user (the processes' user+system time over N), snapshots
stored, failures (must be 0), and each worker's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from sqlalchemy import func, select

from benchmarks.fleet import run_due_schedule
from benchmarks.ingest import scratch_database
from benchmarks.trackers import (
    _database,
)
from trackd.domain.astronomy import natal_chart
from trackd.domain.polls import PollStatus
from trackd.modules.transits import SOURCE, TransitsConfig, ensure_refresh_schedule
from trackd.store.migrate import upgrade
from trackd.store.models import NatalChartRow, PollRow, SnapshotRow, new_id, table_of, utcnow
from trackd.store.repos.natal_charts import bucket_of
from trackd.store.upsert import chunked

TENANT = "bench"
BASE_CHARTS = 300


@dataclass
class TransitsResult:
    backend: str
    users: int
    shards: int
    workers: int
    seconds: float
    users_per_s: float
    ms_per_user: float
    worker_cpu_ms_per_user: float
    snapshots: int
    failed: int
    retried: int
    setup_s: float
    worker_peak_rss_mib: float


def base_charts(count: int, rng: random.Random) -> list[dict[str, float]]:
    """Longitudes of the points of `count` real charts."""
    start = datetime(1930, 1, 1, tzinfo=UTC)
    out = []
    for _ in range(count):
        birth = start + timedelta(days=rng.uniform(0, 80 * 365.25))
        chart = natal_chart(birth, rng.uniform(-60, 60), rng.uniform(-180, 180))
        out.append(chart.longitudes())
    return out


def _points(base: dict[str, float], turn: float) -> dict[str, Any]:
    return {
        name: {
            "longitude": (lon + turn) % 360.0,
            "sign": "",
            "degree": ((lon + turn) % 360.0) % 30.0,
            "retrograde": False,
        }
        for name, lon in base.items()
    }


async def store_charts(sessions: Any, users: int, seed: int = 12) -> None:
    rng = random.Random(seed)
    charts = base_charts(BASE_CHARTS, rng)
    now = utcnow()
    rows = []
    for n in range(users):
        user = f"user-{n:06d}"
        rows.append(
            {
                "id": new_id(),
                "tenant_id": TENANT,
                "user_id": user,
                "bucket": bucket_of(user),
                "birth_at": now,
                "birth_zone": None,
                "birth_local": None,
                "latitude": 0.0,
                "longitude": 0.0,
                "points": _points(charts[n % len(charts)], rng.uniform(0, 360)),
                "created_at": now,
                "updated_at": now,
            }
        )
    table = table_of(NatalChartRow)
    for chunk in chunked(rows, 2000):
        async with sessions() as session, session.begin():
            await session.execute(table.insert(), list(chunk))


async def measure(
    database_url: str,
    redis_url: str,
    *,
    users: int,
    shards: int = 16,
    workers: int = 2,
    concurrency: int = 2,
    time_limit: float = 1800.0,
) -> TransitsResult:
    """Refresh `users` users' transits due at once on `database_url`; see the docstring."""
    sqlite = database_url.startswith("sqlite")
    if sqlite:
        workers = 1
    await upgrade(database_url)
    async with _database(database_url) as sessions:
        started = time.perf_counter()
        await store_charts(sessions, users)
        async with sessions() as session, session.begin():
            await ensure_refresh_schedule(session, TENANT, TransitsConfig(shards=shards))
        setup_s = time.perf_counter() - started

        fleet = await run_due_schedule(
            sessions,
            database_url,
            redis_url,
            what="transit refresh",
            polls=shards,
            workers=workers,
            concurrency=concurrency,
            time_limit=time_limit,
            tick=0.25,
            env={"TRACKD_POLL_TIMEOUT_S": "1800"},
        )
        async with sessions() as session:
            polls = (
                await session.execute(select(PollRow.status, PollRow.attempt, PollRow.finished_at))
            ).all()
            snapshots = int(
                await session.scalar(
                    select(func.count())
                    .select_from(SnapshotRow)
                    .where(SnapshotRow.source == SOURCE)
                )
                or 0
            )
    due, cpu, peak = fleet.due, fleet.worker_cpu_s, fleet.worker_peak_rss_mib
    completed = [p for p in polls if p.status == PollStatus.COMPLETED.value]
    last = max((p.finished_at for p in completed if p.finished_at), default=due)
    seconds = (last - due).total_seconds()
    return TransitsResult(
        backend="sqlite" if sqlite else "postgresql",
        users=users,
        shards=shards,
        workers=workers,
        seconds=round(seconds, 2),
        users_per_s=round(users / seconds, 1) if seconds > 0 else math.inf,
        ms_per_user=round(1000 * seconds / users, 3),
        worker_cpu_ms_per_user=round(1000 * cpu / users, 3),
        snapshots=snapshots,
        failed=sum(1 for p in polls if p.status == PollStatus.FAILED.value),
        retried=sum(1 for p in polls if p.attempt > 1),
        setup_s=round(setup_s, 1),
        worker_peak_rss_mib=round(peak, 1),
    )


def table(results: list[TransitsResult]) -> Table:
    """The figures as a table for `python -m benchmarks`."""
    shown = Table(
        "backend",
        "users",
        "seconds",
        "users/s",
        "ms/user",
        "worker CPU ms/user",
        "failed / retried",
        "worker peak RSS MiB",
        title="daily transit refresh (scheduler and worker processes, goal < 60 s)",
    )
    for t in results:
        shown.add_row(
            t.backend,
            f"{t.snapshots:,} / {t.users:,}",
            f"{t.seconds:.1f}",
            f"{t.users_per_s:,.0f}",
            f"{t.ms_per_user:.3f}",
            f"{t.worker_cpu_ms_per_user:.3f}",
            f"{t.failed} / {t.retried}",
            f"{t.worker_peak_rss_mib:.0f}",
        )
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="a PostgreSQL server: the run uses a scratch database there (default: SQLite)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("TRACKD_TEST_REDIS_URL"))
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("--redis-url (or TRACKD_TEST_REDIS_URL) is needed: the processes share it")
    options = {
        "users": args.users,
        "shards": args.shards,
        "workers": args.workers,
        "concurrency": args.concurrency,
    }
    result = asyncio.run(run(args.postgres_url, args.redis_url, **options))
    print(json.dumps(asdict(result)))


async def run(postgres_url: str | None, redis_url: str, **options: Any) -> TransitsResult:
    """One measurement on a scratch database: PostgreSQL when a server is given, else SQLite."""
    if postgres_url:
        async with scratch_database(postgres_url, "transits") as url:
            return await measure(url, redis_url, **options)
    with tempfile.TemporaryDirectory() as tmp:
        return await measure(f"sqlite+aiosqlite:///{tmp}/transits.db", redis_url, **options)


if __name__ == "__main__":
    main()
