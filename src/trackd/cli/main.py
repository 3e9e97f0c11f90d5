"""`trackd`: serve, ingest, migrate, tokens, plans, demo, replay."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from trackd.bus.urls import in_process
from trackd.cli import (
    celery,
    demo,
    ingest,
    jobs,
    journal,
    modules,
    natal,
    notify,
    observer,
    plans,
    replay,
    scheduler,
    tokens,
    tracking,
    worker,
)
from trackd.cli.common import BusOpt, DatabaseOpt, fail, load_settings, run, setup_logging
from trackd.cli.serving import serve_runtime
from trackd.runtime import Runtime
from trackd.store.migrate import upgrade

app = typer.Typer(
    help="trackd: records what background work is doing and answers questions about it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tokens.app, name="token")
app.add_typer(notify.app, name="notify")
app.add_typer(plans.app, name="plans")
app.add_typer(jobs.app, name="jobs")
app.add_typer(modules.app, name="modules")
app.add_typer(journal.app, name="journal")
app.add_typer(observer.app, name="observer")
app.add_typer(tracking.app, name="tracking")
app.add_typer(natal.app, name="natal")
app.command("demo")(demo.demo)
app.command("replay")(replay.replay)
app.command("ingest")(ingest.ingest)
app.command("worker")(worker.worker)
app.command("scheduler")(scheduler.scheduler)
app.command("celery")(celery.celery)


class ServeRole(StrEnum):
    ALL = "all"
    API = "api"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    role: Annotated[
        ServeRole,
        typer.Option(help="all: API, ingest, scheduler and pollers; api: API only."),
    ] = ServeRole.ALL,
    database_url: DatabaseOpt = None,
    bus_url: BusOpt = None,
) -> None:
    """Serve the HTTP API (and, with --role all, ingest events, fire schedules and run polls)
    in one process."""
    settings = load_settings(host=host, port=port, database_url=database_url, bus_url=bus_url)
    if role is ServeRole.API and in_process(settings.bus_url):
        raise fail(
            "--role api needs a bus shared with an ingest process; memory:// lives in "
            "one process (use --role all)"
        )
    setup_logging(settings.log_level)
    # The notifier runs with ingest (off with TRACKD_NOTIFIER_ENABLED=false).
    # The scheduler and the pollers run with ingest (off with TRACKD_SCHEDULER_ENABLED=false
    # and TRACKD_WORKER_ENABLED=false).
    every = role is ServeRole.ALL
    runtime = Runtime.build(settings, ingest=every, notify=every, schedule=every, poll=every)
    run(serve_runtime(runtime, settings))


@app.command()
def migrate(database_url: DatabaseOpt = None) -> None:
    """Apply database migrations (serve does this on start)."""
    settings = load_settings(database_url=database_url)
    run(upgrade(settings.database_url))
    typer.echo("database is at the newest schema")


if __name__ == "__main__":  # pragma: no cover
    app()
