"""`trackd ingest`: the ingest role alone, one of N processes sharing a bus and a database.

    trackd ingest --bus-url redis://redis:6379/0 --database-url postgresql+asyncpg://...

Each process joins the ingest consumer group under its own name; the bus shares the
partitions out among them. SIGTERM or SIGINT lets the batch being written commit and be
acknowledged, then the process exits 0; what it had fetched and not written goes to the
other consumers.

With `--metrics-port`, the process serves its ingest metrics (every tenant's: the port is
the operator's, like a node exporter's) at http://127.0.0.1:PORT/metrics for Prometheus.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from prometheus_client import start_http_server

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
from trackd.ingest.consumer import IngestStats
from trackd.runtime import Runtime, default_consumer_name
from trackd.settings import Settings

log = logging.getLogger(__name__)


async def run_ingest(
    settings: Settings, consumer: str, *, burst: bool, metrics_port: int | None = None
) -> IngestStats:
    """Migrate, then consume until a stop signal (or, with `burst`, until idle); with
    `metrics_port`, serve the ingest metrics on it (loopback only) meanwhile."""
    runtime = Runtime.build(settings, ingest=True, consumer=consumer, modules=False)
    ingest = runtime.ingest
    if ingest is None:  # pragma: no cover - built with ingest=True
        raise RuntimeError("the runtime was built without its ingest consumer")
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=ingest.metrics.registry)
        log.info("ingest metrics served port=%d", metrics_port)
    async with until_signalled(runtime, ingest.stop):
        log.info("ingest started consumer=%s bus=%s burst=%s", consumer, settings.bus_url, burst)
        stats = await ingest.run(burst=burst)
    log.info(
        "ingest stopped consumer=%s batches=%d folded=%d duplicates=%d rejected=%d failures=%d",
        consumer,
        stats.batches,
        stats.folded,
        stats.duplicates,
        stats.rejected,
        stats.failures,
    )
    return stats


def ingest(
    database_url: DatabaseOpt = None,
    bus_url: BusOpt = None,
    consumer_name: Annotated[
        str | None,
        typer.Option(
            "--consumer-name",
            help="This process's name in the consumer group, unique per process. "
            "Default: hostname-pid.",
            show_default=False,
        ),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Stop once no event arrives for a while.")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve this process's ingest metrics (all tenants) on 127.0.0.1:PORT/metrics.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Consume events from the bus and write records: the ingest role on its own."""
    settings = load_settings(database_url=database_url, bus_url=bus_url)
    require_shared_bus(settings, "ingest", "other processes publish to")
    if consumer_name is not None and not consumer_name.strip():
        raise fail("--consumer-name must not be empty")
    setup_logging(settings.log_level)
    run(
        run_ingest(
            settings,
            consumer_name or default_consumer_name(),
            burst=burst,
            metrics_port=metrics_port,
        )
    )
