"""`trackd worker`: the pollers alone, one of N processes sharing a bus and a database.

    trackd worker --bus-url redis://redis:6379/0 --database-url postgresql+asyncpg://...

Each process takes due polls under a lease, so any number can run side by side. SIGTERM or
SIGINT stops it taking polls and lets the running ones end (their task events included),
then it exits 0; a worker killed outright leaves its polls to run again elsewhere once their
leases expire.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from trackd.cli.common import (
    BusOpt,
    DatabaseOpt,
    fail,
    load_settings,
    require_shared_bus,
    run,
    setup_logging,
    until_signalled,
)
from trackd.runtime import Runtime, build_poller, default_consumer_name
from trackd.scheduling.poller import PollerStats, stats_line
from trackd.settings import Settings

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, consumer: str, *, burst: bool) -> PollerStats:
    """Migrate, then run polls until a stop signal (or, with `burst`, until none is due)."""
    runtime = Runtime.build(settings, ingest=False)
    poller = build_poller(settings, runtime.bus, runtime.sessions, consumer)
    async with until_signalled(runtime, poller.stop):
        log.info("worker started consumer=%s bus=%s burst=%s", consumer, settings.bus_url, burst)
        stats = await poller.run(burst=burst)
    log.info(
        "worker stopped consumer=%s %s",
        consumer,
        " ".join(f"{k}={v}" for k, v in stats_line(stats).items()),
    )
    return stats


def worker(
    database_url: DatabaseOpt = None,
    bus_url: BusOpt = None,
    consumer_name: Annotated[
        str | None,
        typer.Option(
            "--consumer-name",
            help="This worker's name (its lease owner), unique per process. Default: hostname-pid.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Polls run at once. Overrides TRACKD_POLL_CONCURRENCY.", min=1),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Stop once no poll is due or running.")
    ] = False,
) -> None:
    """Run due polls (sources fetched as tracked tasks): the worker role on its own."""
    settings = load_settings(
        database_url=database_url, bus_url=bus_url, poll_concurrency=concurrency
    )
    require_shared_bus(settings, "worker", "shared with ingest (its polls are tracked as tasks)")
    if consumer_name is not None and not consumer_name.strip():
        raise fail("--consumer-name must not be empty")
    setup_logging(settings.log_level)
    run(run_worker(settings, consumer_name or default_consumer_name(), burst=burst))
