"""`trackd scheduler`: the scheduler alone, turning due schedules into polls.

    trackd scheduler --bus-url redis://redis:6379/0 --database-url postgresql+asyncpg://...

On PostgreSQL several may run at once (each due run is fired by exactly one); on SQLite run
one. SIGTERM or SIGINT lets the tick in progress commit, then it exits 0.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated

import typer

from trackd.cli.common import (
    BusOpt,
    DatabaseOpt,
    load_settings,
    require_shared_bus,
    run,
    setup_logging,
    until_signalled,
)
from trackd.runtime import Runtime, build_scheduler
from trackd.scheduling.scheduler import SchedulerStats
from trackd.settings import Settings

log = logging.getLogger(__name__)


async def run_scheduler(settings: Settings, *, burst: bool) -> SchedulerStats:
    """Migrate, then fire due schedules until a stop signal (or, with `burst`, until none
    is due)."""
    runtime = Runtime.build(settings, ingest=False)
    scheduler = build_scheduler(settings, runtime.bus, runtime.sessions)
    async with until_signalled(runtime, scheduler.stop):
        log.info("scheduler started bus=%s burst=%s", settings.bus_url, burst)
        stats = await scheduler.run(burst=burst)
    log.info("scheduler stopped %s", " ".join(f"{k}={v}" for k, v in asdict(stats).items()))
    return stats


def scheduler(
    database_url: DatabaseOpt = None,
    bus_url: BusOpt = None,
    burst: Annotated[bool, typer.Option("--burst", help="Stop once no schedule is due.")] = False,
) -> None:
    """Fire due schedules as polls for the workers: the scheduler role on its own."""
    settings = load_settings(database_url=database_url, bus_url=bus_url)
    require_shared_bus(settings, "scheduler", "shared with the workers")
    setup_logging(settings.log_level)
    run(run_scheduler(settings, burst=burst))
