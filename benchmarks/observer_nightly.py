"""The observer's nightly runs of N users with journals, end to end through `trackd scheduler`,
`trackd worker` processes and the store (issue 13: 10,000 users; time reported, never asserted).

    python -m benchmarks.observer_nightly --redis-url URL [--postgres-url URL] [--users 10000]

prints one JSON line. Per run:

1. N users' journals of `--days` days (mood and energy from a simulated user: AR(1) around a
   personal mean) and the tenant's solar history (one Kp and Bz a day) are stored in bulk (not
   timed).
2. The tenant's nightly runs are scheduled as `trackd observer nightly` does
   (`ensure_nightly_schedule`: 32 polls, each a range of user buckets), and `trackd scheduler`
   and `--workers` `trackd worker` processes start on a Redis bus of their own.
3. The schedule is made due at t0; once every poll has finished the processes are stopped.

Figures: seconds from t0 to the last poll's commit, users per second, wall and worker CPU
milliseconds per user, runs completed and failed, findings stored and users with any (no
effect is planted, so that share is the false-positive rate), each worker's peak RSS.
The analysis is the configured default (every driver, 4 lags, 1000 permutations).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import distinct, func, select

from benchmarks.fleet import run_due_schedule
from benchmarks.ingest import scratch_database
from benchmarks.trackers import (
    _database,
)
from trackd.domain.history import Retention
from trackd.domain.polls import PollStatus
from trackd.modules.observer_runs import NIGHTLY_SHARDS, ensure_nightly_schedule
from trackd.snapshots.service import backfill_history
from trackd.sources.base import Snapshot
from trackd.store.migrate import upgrade
from trackd.store.models import (
    JournalEntryRow,
    ObserverFindingRow,
    ObserverRunRow,
    PollRow,
    new_id,
    table_of,
)
from trackd.store.upsert import chunked

TENANT = "bench"


@dataclass
class NightlyResult:
    backend: str
    users: int
    days: int
    workers: int
    seconds: float
    users_per_s: float
    ms_per_user: float
    worker_cpu_ms_per_user: float
    runs_completed: int
    runs_failed: int
    findings: int
    users_with_findings: int
    polls_failed: int
    setup_s: float
    worker_peak_rss_mib: float


def _scores(rng: np.random.Generator, days: int) -> np.ndarray[Any, Any]:
    """An AR(1) series (phi 0.5) around a personal mean, rounded to 1-10."""
    mean, noise = rng.uniform(4, 7), rng.normal(0, 1.2, days)
    out = np.empty(days)
    level = 0.0
    for t in range(days):
        level = 0.5 * level + noise[t]
        out[t] = mean + level
    return np.clip(np.rint(out), 1, 10)


async def store_inputs(sessions: Any, users: int, days: int, seed: int = 13) -> None:
    rng = np.random.default_rng(seed)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=days)
    kp = np.clip(rng.gamma(2.0, 1.0, days), 0, 9).round(2)
    async with sessions() as session, session.begin():
        await backfill_history(
            session,
            TENANT,
            [
                Snapshot(
                    subject="solar",
                    source="noaa_swpc",
                    data={"kp": {"official": {"kp": float(kp[i])}}, "mag": {"bz": -1.5 * kp[i]}},
                    taken_at=first + timedelta(days=i, hours=12),
                )
                for i in range(days)
            ],
            retention=Retention(keep=100_000, max_age=timedelta(days=3650)),
        )
    table = table_of(JournalEntryRow)
    rows: list[dict[str, Any]] = []
    for n in range(users):
        user = f"user-{n:06d}"
        mood, energy = _scores(rng, days), _scores(rng, days)
        for i in range(days):
            at = first + timedelta(days=i, hours=20)
            rows.append(
                {
                    "id": new_id(),
                    "tenant_id": TENANT,
                    "user_id": user,
                    "entry_id": f"d{i}",
                    "timestamp": at,
                    "mood_score": int(mood[i]),
                    "energy_score": int(energy[i]),
                    "sleep_hours": None,
                    "symptoms": [],
                    "text": "",
                    "metrics": {},
                    "created_at": at,
                    "updated_at": at,
                }
            )
        if len(rows) >= 20_000:
            for chunk in chunked(rows, 2000):
                async with sessions() as session, session.begin():
                    await session.execute(table.insert(), list(chunk))
            rows = []
    for chunk in chunked(rows, 2000):
        async with sessions() as session, session.begin():
            await session.execute(table.insert(), list(chunk))


async def measure(
    database_url: str,
    redis_url: str,
    *,
    users: int,
    days: int = 180,
    workers: int = 2,
    concurrency: int = 1,
    time_limit: float = 6 * 3600.0,
) -> NightlyResult:
    """Run `users` users' nightly analyses due at once on `database_url`; see the docstring."""
    sqlite = database_url.startswith("sqlite")
    await upgrade(database_url)
    async with _database(database_url) as sessions:
        started = time.perf_counter()
        await store_inputs(sessions, users, days)
        async with sessions() as session, session.begin():
            await ensure_nightly_schedule(session, TENANT)
        setup_s = time.perf_counter() - started

        fleet = await run_due_schedule(
            sessions,
            database_url,
            redis_url,
            what="nightly runs",
            polls=NIGHTLY_SHARDS,
            workers=workers,
            concurrency=concurrency,
            time_limit=time_limit,
            tick=0.5,
        )
        async with sessions() as session:
            polls = (await session.execute(select(PollRow.status, PollRow.finished_at))).all()
            runs = dict(
                (
                    await session.execute(
                        select(ObserverRunRow.status, func.count()).group_by(ObserverRunRow.status)
                    )
                ).all()
            )
            findings = int(
                await session.scalar(select(func.count()).select_from(ObserverFindingRow)) or 0
            )
            # No effect is planted: the share of users with any finding is the false-positive
            # rate that Benjamini-Hochberg bounds by q per user.
            users_with_findings = int(
                await session.scalar(select(func.count(distinct(ObserverFindingRow.user_id)))) or 0
            )
    due, cpu, peak = fleet.due, fleet.worker_cpu_s, fleet.worker_peak_rss_mib
    completed = [p for p in polls if p.status == PollStatus.COMPLETED.value]
    last = max((p.finished_at for p in completed if p.finished_at), default=due)
    seconds = (last - due).total_seconds()
    return NightlyResult(
        backend="sqlite" if sqlite else "postgresql",
        users=users,
        days=days,
        workers=workers,
        seconds=round(seconds, 2),
        users_per_s=round(users / seconds, 2) if seconds > 0 else math.inf,
        ms_per_user=round(1000 * seconds / users, 1),
        worker_cpu_ms_per_user=round(1000 * cpu / users, 1),
        runs_completed=int(runs.get("completed", 0)),
        runs_failed=int(runs.get("failed", 0)),
        findings=findings,
        users_with_findings=users_with_findings,
        polls_failed=sum(1 for p in polls if p.status == PollStatus.FAILED.value),
        setup_s=round(setup_s, 1),
        worker_peak_rss_mib=round(peak, 1),
    )


async def run(postgres_url: str | None, redis_url: str, **options: Any) -> NightlyResult:
    """One measurement on a scratch database: PostgreSQL when a server is given, else SQLite."""
    if postgres_url:
        async with scratch_database(postgres_url, "observer") as url:
            return await measure(url, redis_url, **options)
    with tempfile.TemporaryDirectory() as tmp:
        return await measure(f"sqlite+aiosqlite:///{tmp}/observer.db", redis_url, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="a PostgreSQL server: the run uses a scratch database there (default: SQLite)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("TRACKD_TEST_REDIS_URL"))
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("--redis-url (or TRACKD_TEST_REDIS_URL) is needed: the processes share it")
    options = {
        "users": args.users,
        "days": args.days,
        "workers": args.workers,
        "concurrency": args.concurrency,
    }
    result = asyncio.run(run(args.postgres_url, args.redis_url, **options))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
