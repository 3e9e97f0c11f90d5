"""One due schedule run by real processes: `trackd scheduler` and `trackd worker`s on a Redis
bus of their own, timed from the moment the schedule is made due until its polls finished.

The transit refresh and the observer's nightly runs are measured this way; each stores its own
inputs before and reads its own figures after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.trackers import (
    Child,
    _drop_redis_keys,
    finished_polls,
    make_due,
    trackd_executable,
)


@dataclass(frozen=True)
class FleetRun:
    """When the schedule was made due, and what the worker processes used meanwhile."""

    due: datetime
    worker_cpu_s: float
    worker_peak_rss_mib: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_due_schedule(
    sessions: Any,
    database_url: str,
    redis_url: str,
    *,
    what: str,
    polls: int,
    workers: int,
    concurrency: int,
    time_limit: float,
    tick: float,
    env: Mapping[str, str] | None = None,
) -> FleetRun:
    """Start the scheduler and `workers` workers on `database_url`, make the store's one
    schedule due, and wait until `polls` polls have finished; then stop the processes and
    drop the run's Redis keys. `what` names the work in errors; `env` adds settings.

    Raises:
        RuntimeError: the schedule was not made due, a process died, or the polls outlasted
            `time_limit` seconds.
    """
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    bus_url = f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}"
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="trackd-bench-") as tmp:
        try:
            settings = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
            settings.update(
                PYTHONUNBUFFERED="1",
                TRACKD_DATABASE_URL=database_url,
                TRACKD_BUS_URL=bus_url,
                TRACKD_POLL_CONCURRENCY=str(concurrency),
                TRACKD_POLL_LEASE_S="120",
                **(env or {}),
            )
            exe = trackd_executable()
            children.append(
                Child("scheduler", [exe, "scheduler"], settings, Path(tmp, "scheduler.log"))
            )
            for n in range(workers):
                name = f"worker-{n + 1}"
                args = [exe, "worker", "--consumer-name", f"bench-{name}"]
                children.append(Child(name, args, settings, Path(tmp, f"{name}.log")))
            for child in children:
                await child.started(f"{child.name.split('-')[0]} started")
            pool = children[1:]
            cpu_before = sum(cpu_seconds(w.proc.pid) for w in pool)

            due = datetime.now(UTC) + timedelta(seconds=0.2)
            if await make_due(sessions, due) != 1:
                raise RuntimeError(f"the schedule of the {what} was not made due")
            deadline = time.monotonic() + time_limit
            while await finished_polls(sessions) < polls:
                for child in children:
                    child.note_peak()
                    if not child.alive():
                        raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {what} outlasted {time_limit:.0f} s")
                await asyncio.sleep(tick)
            cpu = sum(cpu_seconds(w.proc.pid) for w in pool) - cpu_before
            for child in children:
                await child.stop()
            return FleetRun(due, cpu, max(w.peak_rss_mib for w in pool))
        finally:
            for child in children:
                with contextlib.suppress(Exception):
                    await child.stop(grace=5)
            await _drop_redis_keys(redis_url, prefix)
