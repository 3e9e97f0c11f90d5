"""Where a read's time goes: `python -m benchmarks.profile_reads [--plans N]`.

Fills a SQLite store as `benchmarks/reads.py` does (by default 20 plans of 1,000 tasks: the
work of one read does not grow with the other plans) and prints the median CPU time of each
stage of a page of a plan's 1,000 tasks, and of each route whole. CPU time (of the process, the
driver's thread included) rather than wall time: it barely moves when other work shares the
machine, where wall-time latencies do.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import httpx
import orjson
from sqlalchemy import text

from benchmarks import reads
from trackd.api.routers.task_reads import _task
from trackd.app import create_app
from trackd.domain.access import Role
from trackd.runtime import Runtime, freeze_startup_heap
from trackd.settings import Settings
from trackd.store.repos import tasks, tokens

PLAN = "plan-10"


async def cpu_ms(step: Callable[[], Awaitable[object]], runs: int = 200) -> float:
    """The median CPU time of `step`, in ms, after 10 warm-up runs."""
    times = []
    for i in range(runs + 10):
        started = time.process_time()
        await step()
        if i >= 10:
            times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


async def profile(url: str) -> list[tuple[str, float]]:
    runtime = Runtime.build(Settings(database_url=url))
    await runtime.start()
    out = []
    try:
        await reads.fill(runtime)
        await reads.trace_stored(runtime)
        freeze_startup_heap()
        async with runtime.sessions() as s, s.begin():
            token = await tokens.create(s, reads.TENANT, user_id=None, role=Role.READER)
        bare = reads.RAW["plan tasks (1,000)"].replace("plan-500", PLAN)

        async def select_rows() -> object:
            async with runtime.engine.connect() as conn:
                return (await conn.execute(text(bare), {"tenant": reads.TENANT})).fetchall()

        async def repo_rows() -> object:
            async with runtime.sessions() as s:
                return await tasks.summaries_for_plan(s, reads.TENANT, PLAN, limit=1000)

        found = await repo_rows()

        async def to_json() -> object:
            body = {"tasks": [_task(t) for t in found]}  # type: ignore[attr-defined]
            return orjson.dumps(body, option=orjson.OPT_UTC_Z)

        out += [
            ("a plan's 1,000 tasks: bare SELECT", await cpu_ms(select_rows)),
            ("  the same through a session and the repo (rows converted)", await cpu_ms(repo_rows)),
            ("  the rows to JSON (dicts + orjson)", await cpu_ms(to_json)),
        ]
        app = create_app(runtime, manage=False)
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            paths = {
                "GET /health (no token, no query)": "/health",
                "GET plan status": f"/v1/tracker/plans/{PLAN}",
                "GET a plan's 1,000 tasks": f"/v1/tracker/plans/{PLAN}/tasks?limit=1000",
                "GET the 1,000-event timeline": "/v1/tracker/plans/plan-trace/timeline",
            }
            for name, path in paths.items():

                async def get(path: str = path) -> object:
                    return (await client.get(path, headers=headers)).raise_for_status()

                out.append((name, await cpu_ms(get)))
        return out
    finally:
        await runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=20)
    reads.PLANS = parser.parse_args().plans
    with tempfile.TemporaryDirectory() as tmp:
        for name, ms in asyncio.run(profile(f"sqlite+aiosqlite:///{tmp}/reads.db")):
            print(f"{name:62} {ms:6.2f} ms CPU")


if __name__ == "__main__":
    main()
