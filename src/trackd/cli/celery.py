"""`trackd celery`: track an existing Celery app from its own events, no code change.

    trackd celery --broker redis://localhost:6379/0 --result-backend redis://localhost:6379/1

Workers must send events (`celery worker -E`, or `celery -A proj control enable_events`).
With the default memory:// bus this process also ingests into --database-url, so it works
alone; with redis:// or nats:// it only publishes, and `trackd ingest` or `trackd serve`
writes the records. SIGTERM or SIGINT stops it once what it received is published.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import timedelta
from typing import Annotated, Any

import typer

from trackd.bus.urls import in_process
from trackd.cli.common import (
    BusOpt,
    DatabaseOpt,
    fail,
    failing,
    load_settings,
    run,
    setup_logging,
    until_signalled,
)
from trackd.errors import ConfigError
from trackd.jobs.celery import require_celery
from trackd.jobs.celery.monitor import CeleryMonitor, MonitorOptions, MonitorStats
from trackd.jobs.celery.reconcile import Store
from trackd.runtime import Runtime
from trackd.settings import Settings

log = logging.getLogger(__name__)


def celery_app(broker: str | None, result_backend: str | None, app_path: str | None) -> Any:
    """The Celery app to watch: the user's own (-A), or one made from the URLs."""
    require_celery()
    from celery import Celery

    if app_path:
        from celery.app.utils import find_app

        try:
            app = find_app(app_path)
        except Exception as exc:
            raise ConfigError(f"cannot load the Celery app {app_path!r}: {exc}") from None
        if broker:
            app.conf.broker_url = broker
        if result_backend:
            app.conf.result_backend = result_backend
        return app
    if not broker:
        raise ConfigError("name the Celery broker: --broker redis://host:6379/0 (or -A app)")
    return Celery("trackd-celery", broker=broker, backend=result_backend)


async def run_monitor(
    settings: Settings,
    app: Any,
    options: MonitorOptions,
    *,
    read_store: bool,
    tenant: str,
) -> MonitorStats:
    """Run the monitor (and, on memory://, an ingest consumer) until a stop signal."""
    standalone = in_process(settings.bus_url)
    runtime = Runtime.build(settings, ingest=standalone, consumer="trackd-celery", modules=False)
    store = Store(runtime.sessions, tenant) if standalone or read_store else None
    monitor = CeleryMonitor(app, runtime.bus, options, store=store)
    async with until_signalled(runtime, monitor.stop, migrate=store is not None):
        await runtime.start(migrate=False)
        log.info(
            "trackd celery started broker=%s bus=%s ingest=%s",
            app.connection_for_read().as_uri(),
            settings.bus_url,
            standalone,
        )
        stats = await monitor.run()
    log.info(
        "trackd celery stopped events=%d published=%d reconnects=%d",
        stats.events,
        stats.forwarded.published,
        stats.reconnects,
    )
    return stats


def celery(
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="The Celery broker URL, e.g. redis://localhost:6379/0. "
            "Default: CELERY_BROKER_URL, or the -A app's.",
            show_default=False,
        ),
    ] = None,
    result_backend: Annotated[
        str | None,
        typer.Option(
            "--result-backend",
            help="The Celery result backend URL, read back after a restart for what ended "
            "meanwhile. Default: CELERY_RESULT_BACKEND, or the -A app's.",
            show_default=False,
        ),
    ] = None,
    app_path: Annotated[
        str | None,
        typer.Option(
            "-A",
            "--app",
            help="Load your Celery app (module or module:attribute) for its settings.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseOpt = None,
    bus_url: BusOpt = None,
    tenant: Annotated[
        str | None,
        typer.Option(help="Tenant the records belong to. Default: TRACKD_DEFAULT_TENANT."),
    ] = None,
    max_tasks: Annotated[
        int, typer.Option(min=1, help="Tasks remembered between their events (memory bound).")
    ] = 10_000,
    heartbeat_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds between liveness events for a running task, sent as its worker's "
            "heartbeats arrive; 0 sends none.",
        ),
    ] = 60.0,
    reconcile_hours: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="How far back to read the result backend on start and after reconnecting; "
            "0 turns reconciliation off.",
        ),
    ] = 24.0,
) -> None:
    """Track a Celery app from its events (task-sent ... task-succeeded, worker heartbeats)."""
    settings = load_settings(database_url=database_url, bus_url=bus_url)
    if tenant is not None and not 0 < len(tenant) <= 100:
        raise fail("--tenant must be 1 to 100 characters")
    broker = broker or os.environ.get("CELERY_BROKER_URL")
    result_backend = result_backend or os.environ.get("CELERY_RESULT_BACKEND")
    with failing():
        app = celery_app(broker, result_backend, app_path)
    setup_logging(settings.log_level)
    options = MonitorOptions(
        max_tasks=max_tasks,
        heartbeat_every=heartbeat_every,
        tenant_id=tenant,
        reconcile_window=timedelta(hours=reconcile_hours) if reconcile_hours > 0 else None,
    )
    read_store = database_url is not None or "TRACKD_DATABASE_URL" in os.environ
    with contextlib.suppress(KeyboardInterrupt):
        run(
            run_monitor(
                settings,
                app,
                options,
                read_store=read_store,
                tenant=tenant or settings.default_tenant,
            )
        )
