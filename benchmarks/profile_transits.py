"""Profile the daily transit refresh in one process with pyinstrument: N users' charts, the
refresh's shard polls run by an in-process poller (fetch, aspects, bulk record), on SQLite or a
scratch PostgreSQL database. `--days 2` runs a second refresh an hour later, so that the
second one reads the histories' newest rows and applies retention as every later day does.

    python -m benchmarks.profile_transits --users 10000 --out benchmarks/profiles/transits.html
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.ingest import scratch_database
from benchmarks.transits import TENANT, store_charts
from trackd.modules.config import ModuleConfigCache
from trackd.modules.registry import registry as module_registry
from trackd.modules.transits import SOURCE, TransitRefresh, TransitsConfig, shard_targets
from trackd.scheduling import Poller, PollerOptions, request_poll
from trackd.settings import Settings
from trackd.sources import registry
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade


async def refresh(database_url: str, users: int, shards: int, days: int) -> list[float]:
    """Store the charts, then run `days` refreshes; the seconds of each."""
    engine = create_engine(database_url)
    seconds = []
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        await store_charts(sessions, users)
        start = datetime.now(UTC)
        for day in range(days):
            instant = start + timedelta(hours=day)
            source = TransitRefresh(
                sessions,
                ModuleConfigCache(sessions, module_registry, ttl=60),
                clock=lambda at=instant: at,
            )
            registry.registry.register(source, replace=True)
            try:
                async with sessions() as session, session.begin():
                    for target in shard_targets(TENANT, shards):
                        await request_poll(session, TENANT, SOURCE, target)
                poller = Poller(
                    None,
                    sessions,
                    PollerOptions(consumer="profile", timeout_seconds=600, lease_seconds=600),
                    settings=Settings(),
                )
                started = time.perf_counter()
                await poller.run_due()
                seconds.append(round(time.perf_counter() - started, 2))
            finally:
                registry.registry.unregister(SOURCE)
    finally:
        await engine.dispose()
    return seconds


async def run(postgres_url: str | None, **options: Any) -> list[float]:
    if postgres_url:
        async with scratch_database(postgres_url, "profile_transits") as url:
            return await refresh(url, **options)
    with tempfile.TemporaryDirectory() as tmp:
        return await refresh(f"sqlite+aiosqlite:///{tmp}/transits.db", **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=TransitsConfig().shards)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    profiler.start()
    seconds = asyncio.run(
        run(args.postgres_url, users=args.users, shards=args.shards, days=args.days)
    )
    profiler.stop()
    args.out.write_text(profiler.output_html())
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"refresh seconds per day: {seconds}")


if __name__ == "__main__":
    main()
