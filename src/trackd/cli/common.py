"""What every command shares: settings with flag overrides, logging, clean failures."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trackd.bus.urls import in_process
from trackd.errors import TrackdError
from trackd.settings import Settings

if TYPE_CHECKING:
    from trackd.runtime import Runtime

T = TypeVar("T")

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides TRACKD_DATABASE_URL.", show_default=False),
]
BusOpt = Annotated[
    str | None, typer.Option("--bus-url", help="Overrides TRACKD_BUS_URL.", show_default=False)
]


def fail(message: str) -> typer.Exit:
    """Print one line saying what to fix and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def load_settings(**overrides: Any) -> Settings:
    try:
        base = Settings()
        values = {k: v for k, v in overrides.items() if v is not None}
        return Settings.model_validate({**base.model_dump(), **values})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(f"setting {where}: {first['msg']}") from None


def require_shared_bus(settings: Settings, role: str, needs: str) -> None:
    """Refuse to run a role on its own over memory://, which no other process can reach."""
    if in_process(settings.bus_url):
        raise fail(
            f"trackd {role} needs a bus {needs}; memory:// lives inside one process "
            "(use redis:// or nats://, or trackd serve)"
        )


def progress_bar(*, remaining: bool = True) -> Progress:
    """The progress bar of long commands, on stderr so stdout stays for results; it goes
    away when done. `remaining` adds an estimate of the time left (for known totals)."""
    columns: list[ProgressColumn] = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=Console(stderr=True), transient=True)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )


@contextmanager
def failing() -> Iterator[None]:
    """Where the CLI answers trackd's errors (the shared set of `trackd.errors`: a rule
    broken, forbidden, not found, a conflict; and a setting): one line and exit code 2.
    Commands let a feature's error through to here instead of catching it."""
    try:
        yield
    except TrackdError as exc:
        raise fail(str(exc)) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; trackd's errors fail the command as `failing` says."""
    with failing():
        try:
            return asyncio.run(coro)
        except OSError as exc:
            raise fail(f"{exc.strerror or exc} (is the database reachable?)") from None


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@asynccontextmanager
async def until_signalled(
    runtime: Runtime, stop: Callable[[], None], *, migrate: bool = True
) -> AsyncIterator[None]:
    """For a role run on its own (ingest, worker, scheduler, celery): migrate first (several
    processes starting together take turns, by an advisory lock on PostgreSQL), let SIGTERM
    and SIGINT call `stop` so the role ends cleanly, and stop the runtime on leaving."""
    loop = asyncio.get_running_loop()
    try:
        if migrate:
            from trackd.store.migrate import upgrade

            await upgrade(runtime.engine)
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop)
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await runtime.stop()
