"""One solar poll fanned out to many users' notification rules (issue 12).

N users each have their own webhook channel following the solar module (a subscription to
source `noaa_swpc`, subject `solar`, as `PUT /v1/tracking/solar/channels/{id}` makes). A poll
of the local NOAA stand-in (trackd's demo feeds) then finds the storm level changed against
the stored reading, and in the one transaction that stores the snapshot trackd queues the
change and the event for the bus and one message per channel for each: 2 x N outbox rows.
The time is that of the poll, end to end through the poller (fetch, store, rules, outbox);
it is reported, never asserted.

Run: `python -m benchmarks.solar_fanout [--users 100000] [--postgres-url URL]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import func, insert, select

from benchmarks.ingest import scratch_database
from trackd.demo_feeds import noaa_app
from trackd.modules.tracking import history_policy
from trackd.outbound.http import outbound_client
from trackd.scheduling import Poller, PollerOptions, request_poll
from trackd.settings import Settings
from trackd.snapshots.service import record_snapshot
from trackd.sources import registry
from trackd.sources.base import Snapshot
from trackd.sources.noaa_swpc import NoaaSwpcSource
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade
from trackd.store.models import NotificationChannel, NotificationSubscription, OutboxRow, new_id
from trackd.testing_server import LocalServer

TENANT = "bench"
CHUNK = 5_000
# What the store held before the poll: a G2 storm (the stand-in now answers quiet).
BEFORE = {"status": {"level": "G2", "g_scale": 2, "kp": 6.0, "kp_source": "estimated_1m"}}


async def _users(sessions: Any, users: int) -> None:
    now = datetime.now(UTC)
    for start in range(0, users, CHUNK):
        channels, follows = [], []
        for n in range(start, min(users, start + CHUNK)):
            url = f"https://hooks.example.org/user-{n}"
            channel = new_id()
            channels.append(
                {
                    "id": channel,
                    "tenant_id": TENANT,
                    "owner_user_id": f"user-{n}",
                    "name": f"webhook user-{n}",
                    "kind": "webhook",
                    "url": url,
                    "url_digest": hashlib.sha256(url.encode()).hexdigest(),
                    "options": {},
                    "enabled": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            follows.append(
                {
                    "id": new_id(),
                    "tenant_id": TENANT,
                    "channel_id": channel,
                    "source": "noaa_swpc",
                    "subject": "solar",
                    "user_id": f"user-{n}",
                    "created_at": now,
                }
            )
        async with sessions() as session, session.begin():
            await session.execute(insert(NotificationChannel), channels)
            await session.execute(insert(NotificationSubscription), follows)


async def measure(database_url: str, backend: str, users: int) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        await _users(sessions, users)
        settings = Settings(allow_private_fetch=True, fetch_rate_per_host=1000)
        with LocalServer(noaa_app()) as noaa:
            registry.registry.register(NoaaSwpcSource(base_url=noaa.url), replace=True)
            try:
                async with sessions() as session, session.begin():
                    before = Snapshot("solar", "noaa_swpc", BEFORE, datetime.now(UTC))
                    await record_snapshot(session, TENANT, before, settings=settings)
                    await request_poll(session, TENANT, "noaa_swpc", {})
                poller = Poller(
                    None,
                    sessions,
                    PollerOptions(consumer="bench", timeout_seconds=600, lease_seconds=600),
                    client_factory=partial(outbound_client, settings),
                    policies=history_policy,
                    settings=settings,
                )
                started = time.perf_counter()
                polled = await poller.run_due()
                seconds = time.perf_counter() - started
            finally:
                registry.registry.unregister("noaa_swpc")
        async with sessions() as session:
            queued = await session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.channel_id.is_not(None))
            )
    finally:
        await engine.dispose()
    return {
        "backend": backend,
        "users": users,
        "polls": polled,
        "channel_messages": int(queued or 0),
        "seconds": round(seconds, 3),
        "us_per_user": round(seconds / users * 1e6, 1),
    }


async def run(users: int, postgres_url: str | None) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(await measure(f"sqlite+aiosqlite:///{tmp}/fanout.db", "sqlite", users))
    if postgres_url:
        async with scratch_database(postgres_url, "fanout") as url:
            results.append(await measure(url, "postgresql", users))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    for result in asyncio.run(run(args.users, args.postgres_url)):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
